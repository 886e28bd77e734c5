"""``revaer runtime migrate | downgrade | current | check``: the schema, from the operator's side.

These commands never open the store (whose startup refuses a schema that is
not at head); each builds its own small engine from the ``[runtime.postgres]``
table the ``runtime_commands`` hook hands over, starting the embedded server
under the data dir when no DSN is set. They take no writer lock,
so they run alongside a daemon. Failure is one line and exit status 3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import click
import psycopg
import sqlalchemy as sa

from revaer_core import RevaerError
from revaer_runtime_pg import database, migrate
from revaer_runtime_pg.embedded import EmbeddedServer
from revaer_runtime_pg.migrate import SchemaState
from revaer_runtime_pg.options import PgOptions, parse_options


class NotUpToDate(RevaerError):
    """``current`` or ``check`` found the schema not at head."""


@attrs.frozen
class Target:
    """What the ``runtime_commands`` hook handed over: the ``[runtime.postgres]`` table and the data dir."""

    options: Mapping[str, Any]
    data_dir: Path

    @contextlib.contextmanager
    def engine(self) -> Iterator[tuple[sa.Engine, PgOptions, str]]:
        """An engine on the configured database (the embedded server started if need be).

        The options are parsed here, when a command runs, so ``--help`` works with bad settings.
        """
        options = parse_options(self.options)
        embedded = None
        dsn = options.dsn
        if dsn is None:
            embedded = EmbeddedServer(self.data_dir)
            dsn = embedded.start()
        engine = database.make_engine(
            dsn,
            application_name=database.application_name("cli"),
            pool_size=1,
            connect_timeout_s=options.connect_timeout_s,
            statement_timeout_ms=options.statement_timeout_ms,
        )
        try:
            yield engine, options, dsn
        except (psycopg.Error, sa.exc.DBAPIError) as exc:
            raise database.unavailable(exc, dsn) from None
        finally:
            engine.dispose()
            if embedded is not None:
                embedded.stop()


def all_commands(options: Mapping[str, Any], data_dir: Path) -> list[click.Command]:
    """Every command of this backend, bound to ``options`` and ``data_dir``, for the ``runtime_commands`` hook."""
    target = Target(options=options, data_dir=data_dir)

    @click.command("migrate")
    @click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
    def migrate_command(revision: str) -> None:
        """Create the schema or upgrade it to the newest revision (safe to repeat, and alongside a daemon)."""
        with target.engine() as (engine, options, _):
            status = migrate.upgrade(engine, options.schema, revision)
        click.echo(f"migrated: {status.describe()}")

    @click.command("downgrade")
    @click.argument("revision")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def downgrade_command(revision: str, yes: bool) -> None:
        """Downgrade the schema to REVISION ("base" removes every table of the store, and its data)."""
        if not yes:
            click.confirm(f"Downgrade to {revision}? Data in dropped tables is lost", abort=True)
        with target.engine() as (engine, options, _):
            try:
                status = migrate.downgrade(engine, options.schema, revision)
            except Exception as exc:  # Alembic says "bad revision" in its own exception types
                if isinstance(exc, RevaerError | psycopg.Error | sa.exc.DBAPIError):
                    raise
                raise RevaerError(f"cannot downgrade to {revision!r}: {database.one_line(exc)}") from None
        click.echo(f"downgraded: {status.describe()}")

    @click.command("current")
    def current_command() -> None:
        """Show the schema's revision and whether it is up to date (exit 3 when it is not)."""
        with target.engine() as (engine, options, _), engine.connect() as connection:
            status = migrate.status(connection, options.schema)
        click.echo(status.describe())
        if status.state is not SchemaState.CURRENT:
            fix = (
                f"run `{migrate.MIGRATE_COMMAND}`"
                if status.state is not SchemaState.NEWER
                else "upgrade revaer-runtime-pg"
            )
            raise NotUpToDate(fix)

    @click.command("check")
    def check_command() -> None:
        """Check connectivity, the schema revision and row counts (exit 3 on any problem)."""
        with target.engine() as (engine, options, dsn), engine.connect() as connection:
            server = connection.execute(sa.text("SHOW server_version")).scalar_one()
            click.echo(f"connection: ok, PostgreSQL {server} at {database.where(dsn)}")
            status = migrate.status(connection, options.schema)
            click.echo(f"schema: {status.describe()}")
            problem = status.problem()
            if problem is not None:
                raise problem
            schema = connection.dialect.identifier_preparer.quote_schema(options.schema)
            for table in ("torrents", "fs_jobs", "fs_job_history"):
                count = connection.execute(sa.text(f"SELECT count(*) FROM {schema}.{table}")).scalar_one()
                click.echo(f"{table}: {count} rows")

    return [migrate_command, downgrade_command, current_command, check_command]


__all__ = ["all_commands"]
