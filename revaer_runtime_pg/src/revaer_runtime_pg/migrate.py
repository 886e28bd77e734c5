"""Alembic, driven from code: upgrade, downgrade and revision checks under an advisory lock.

The scripts ship in :mod:`revaer_runtime_pg.migrations`; the ``Config`` is
built here with the target schema and the connection in
``config.attributes``. Every run holds a session-level ``pg_advisory_lock``
keyed on the schema (so two processes migrating at once take turns) and a
process-level lock (Alembic's command API keeps module state).

Checking a schema is at head, which every start does, loads no Alembic: the
scripts' revision names are read from their text, and Alembic is imported
only to run a migration (it is a third of a daemon's import time).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from revaer_runtime_pg.errors import SchemaNotReady

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"
MIGRATE_COMMAND = "revaer runtime migrate"
#: Comment put on a schema this store created, so a downgrade to base drops only what is ours.
OWNED_COMMENT = "created by revaer-runtime-pg"

_PROCESS_LOCK = threading.Lock()


def lock_key(purpose: str, schema: str) -> int:
    """A signed 64-bit advisory lock key for ``purpose`` on ``schema``, the same in every process."""
    digest = hashlib.blake2b(f"revaer-runtime-pg:{purpose}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def target_schema() -> str:
    """The schema a running migration script works in (call it from ``upgrade``/``downgrade``)."""
    from alembic import op

    config = op.get_context().config
    if config is None:  # pragma: no cover - only when a script is run outside migrate.py
        raise RuntimeError("revaer_runtime_pg migrations run through revaer_runtime_pg.migrate only")
    schema: str = config.attributes["schema"]
    return schema


def alembic_config(schema: str, connection: sa.Connection | None = None) -> Config:
    """An Alembic config for ``schema``, its scripts read from the installed package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("revaer_runtime_pg") / "migrations"))
    config.attributes["schema"] = schema
    config.attributes["connection"] = connection
    return config


#: ``revision = "0004"`` and ``down_revision = "0003"`` (or ``None``) as every script states them.
_REVISION = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"""^down_revision\s*=\s*(?:None|["']([^"']+)["'])""", re.MULTILINE)


@functools.cache
def revisions() -> Mapping[str, str | None]:
    """Each shipped script's revision and the revision it follows, read from the scripts' text."""
    found: dict[str, str | None] = {}
    for script in (files("revaer_runtime_pg") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py") or script.name == "__init__.py":
            continue
        text = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:  # pragma: no cover - a packaging mistake, caught by the migration tests
            raise RuntimeError(f"migration script {script.name} states no revision or down_revision")
        found[revision.group(1)] = down.group(1)
    return found


def head() -> str:
    """The newest revision the installed code knows: the one no other script follows."""
    followed = set(revisions().values())
    heads = [revision for revision in revisions() if revision not in followed]
    if len(heads) != 1:  # pragma: no cover - a packaging mistake, caught by the migration tests
        raise RuntimeError(f"revaer-runtime-pg ships {len(heads)} migration heads; expected one")
    return heads[0]


def known(revision: str) -> bool:
    """Whether the installed code has a script for ``revision``."""
    return revision in revisions()


class SchemaState(enum.StrEnum):
    """Where a schema stands against the installed code."""

    EMPTY = "empty"  #: no version recorded: nothing of ours there yet
    BEHIND = "behind"  #: an older revision this code can upgrade
    CURRENT = "current"  #: at head
    NEWER = "newer"  #: a revision this code does not know: written by a newer version


@attrs.frozen
class SchemaStatus:
    """A schema's recorded revision compared with the installed head."""

    schema: str
    state: SchemaState
    revision: str | None
    head: str

    def describe(self) -> str:
        """One line for ``revaer runtime current`` and health facts."""
        match self.state:
            case SchemaState.EMPTY:
                return f"schema {self.schema!r} has no revision yet (head is {self.head})"
            case SchemaState.BEHIND:
                return f"schema {self.schema!r} is at {self.revision}, behind head {self.head}"
            case SchemaState.CURRENT:
                return f"schema {self.schema!r} is at {self.revision} (up to date)"
            case SchemaState.NEWER:
                return f"schema {self.schema!r} is at {self.revision}, unknown to this revaer-runtime-pg"

    def problem(self) -> SchemaNotReady | None:
        """The error to refuse service with, or ``None`` when the schema is at head."""
        match self.state:
            case SchemaState.CURRENT:
                return None
            case SchemaState.EMPTY:
                return SchemaNotReady(
                    f"schema {self.schema!r} is not created yet: run `{MIGRATE_COMMAND}` (or start the daemon, "
                    "which creates it)"
                )
            case SchemaState.BEHIND:
                return SchemaNotReady(
                    f"schema {self.schema!r} is at revision {self.revision}, behind this version's {self.head}: "
                    f"run `{MIGRATE_COMMAND}` (or set runtime.postgres.auto_migrate = true)"
                )
            case SchemaState.NEWER:
                return SchemaNotReady(
                    f"schema {self.schema!r} is at revision {self.revision}, which this revaer-runtime-pg does not "
                    f"know (migrated by a newer version?): upgrade revaer-runtime-pg; nothing was written"
                )


def current_revision(connection: sa.Connection, schema: str) -> str | None:
    """The revision recorded in ``schema``, or ``None`` when there is none."""
    table = connection.execute(
        sa.text("SELECT to_regclass(:name)"), {"name": f'"{schema}".{VERSION_TABLE}'}
    ).scalar_one()
    if table is None:
        return None
    version = sa.table(VERSION_TABLE, sa.column("version_num"), schema=schema)
    rows = connection.execute(sa.select(version.c.version_num)).scalars().all()
    if len(rows) > 1:
        raise SchemaNotReady(f"schema {schema!r} records {len(rows)} revisions ({', '.join(rows)}); expected one")
    return rows[0] if rows else None


def status(connection: sa.Connection, schema: str) -> SchemaStatus:
    """Compare the schema's recorded revision with the installed head."""
    revision = current_revision(connection, schema)
    if revision is None:
        state = SchemaState.EMPTY
    elif revision == head():
        state = SchemaState.CURRENT
    elif known(revision):
        state = SchemaState.BEHIND
    else:
        state = SchemaState.NEWER
    return SchemaStatus(schema=schema, state=state, revision=revision, head=head())


@contextlib.contextmanager
def _advisory_lock(connection: sa.Connection, key: int) -> Iterator[None]:
    """Hold the session-level advisory lock ``key`` on ``connection`` (and the process lock)."""
    with _PROCESS_LOCK:
        # No timeout while waiting for another migration; the pooled connection gets its own back afterwards,
        # else every later statement on it (the writer's, say) could wait on a lock for ever.
        timeout = connection.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar_one()
        connection.execute(sa.text("SELECT set_config('statement_timeout', '0', false)"))
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            if connection.in_transaction():
                connection.rollback()
            if not connection.invalidated and not connection.closed:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.execute(sa.text("SELECT set_config('statement_timeout', :t, false)"), {"t": timeout})
                connection.commit()


def ensure_schema(connection: sa.Connection, schema: str) -> None:
    """Create ``schema`` if it is missing, marking it as ours (env.py calls this under the lock)."""
    exists = connection.execute(
        sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).first()
    if exists is None:
        quoted = connection.dialect.identifier_preparer.quote_schema(schema)
        connection.execute(sa.text(f"CREATE SCHEMA {quoted}"))
        connection.execute(sa.text(f"COMMENT ON SCHEMA {quoted} IS '{OWNED_COMMENT}'"))


def _drop_leftovers(connection: sa.Connection, schema: str) -> None:
    """After a downgrade to base: drop the version table, and the schema if we created it and it is empty."""
    quoted = connection.dialect.identifier_preparer.quote_schema(schema)
    connection.execute(sa.text(f"DROP TABLE IF EXISTS {quoted}.{VERSION_TABLE}"))
    comment = connection.execute(
        sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :schema"),
        {"schema": schema},
    ).first()
    if comment is None or comment[0] != OWNED_COMMENT:
        return  # not ours: an operator made it, so it stays
    if _schema_holds_anything(connection, schema):
        return  # someone put their own objects in it: leave it to them
    connection.execute(sa.text(f"DROP SCHEMA {quoted} RESTRICT"))


def _schema_holds_anything(connection: sa.Connection, schema: str) -> bool:
    query = sa.text(
        """
        SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s)
            OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = :s)
            OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s)
        """
    )
    return bool(connection.execute(query, {"s": schema}).scalar_one())


@contextlib.contextmanager
def _migrating(engine: sa.Engine, schema: str) -> Iterator[tuple[sa.Connection, SchemaStatus]]:
    """A connection holding ``schema``'s migration lock, and the status found under it.

    :raises SchemaNotReady: when the schema is at a revision this code does not know (nothing is run).
    """
    with engine.connect() as connection, _advisory_lock(connection, lock_key("migrate", schema)):
        before = status(connection, schema)
        if before.state is SchemaState.NEWER:
            raise before.problem() or AssertionError("unreachable")
        connection.commit()
        yield connection, before


def upgrade(engine: sa.Engine, schema: str, revision: str = "head") -> SchemaStatus:
    """Upgrade ``schema`` to ``revision``; safe to run twice and from several processes at once.

    :raises SchemaNotReady: when the schema is at a revision this code does not know.
    """
    with _migrating(engine, schema) as (connection, _):
        from alembic import command

        command.upgrade(alembic_config(schema, connection), revision)
        connection.commit()
        return status(connection, schema)


def downgrade(engine: sa.Engine, schema: str, revision: str) -> SchemaStatus:
    """Downgrade ``schema`` to ``revision`` (``"base"`` removes everything of ours, the schema too if ours).

    :raises SchemaNotReady: when the schema is at a revision this code does not know.
    """
    with _migrating(engine, schema) as (connection, before):
        if before.state is not SchemaState.EMPTY:
            from alembic import command

            command.downgrade(alembic_config(schema, connection), revision)
            connection.commit()
        if revision == "base":
            _drop_leftovers(connection, schema)
            connection.commit()
        return status(connection, schema)
