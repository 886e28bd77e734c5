"""Opening the database for a store: the embedded server or a DSN, the engine, the writer lock, the schema check.

What a store opens it holds in one :class:`Connected`, and gives back with
:func:`close_database`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import psycopg
import sqlalchemy as sa

from revaer_core import StoreRole
from revaer_runtime_pg import database, migrate
from revaer_runtime_pg.daemon_lock import DaemonLock
from revaer_runtime_pg.migrate import SchemaState
from revaer_runtime_pg.options import PgOptions
from revaer_runtime_pg.schema import Tables, tables
from revaer_runtime_pg.statements import Statements

if TYPE_CHECKING:
    from revaer_runtime_pg.embedded import EmbeddedServer

log = logging.getLogger(__name__)


@attrs.frozen
class Connected:
    """What store_configure opened: the database, its settings and, for the daemon, the writer lock."""

    options: PgOptions
    dsn: str
    engine: sa.Engine
    tables: Tables
    role: StoreRole
    lock: DaemonLock | None
    embedded: EmbeddedServer | None
    statements: Statements


def open_database(options: PgOptions, data_dir: Path, role: StoreRole) -> Connected:
    """Connect (starting the embedded server when there is no DSN), lock, and check or migrate the schema.

    :raises StoreUnavailable: one line, password masked, when the server cannot be used.
    :raises SchemaNotReady: when the schema is not at head and this role may not migrate it.
    :raises DaemonAlreadyRunning: when another daemon writes to the schema.
    """
    embedded = None
    dsn = options.dsn
    if dsn is None:
        from revaer_runtime_pg.embedded import EmbeddedServer  # here: a store given a DSN runs no server of its own

        embedded = EmbeddedServer(data_dir)
        dsn = embedded.start()
    engine: sa.Engine | None = None
    lock: DaemonLock | None = None
    try:
        engine = database.make_engine(
            dsn,
            application_name=database.application_name(role.value),
            pool_size=options.pool_size,
            connect_timeout_s=options.connect_timeout_s,
            statement_timeout_ms=options.statement_timeout_ms,
        )
        if role is StoreRole.DAEMON:
            lock = DaemonLock(dsn, options.schema, connect_timeout_s=options.connect_timeout_s)
            lock.acquire()
        with engine.connect() as connection:
            status = migrate.status(connection, options.schema)
        may_migrate = role is StoreRole.DAEMON and (
            status.state is SchemaState.EMPTY or (status.state is SchemaState.BEHIND and options.auto_migrate)
        )
        if may_migrate:
            with database.patience(database.BULK_DEADLINE_S):
                status = migrate.upgrade(engine, options.schema)
            log.info("runtime store: %s", status.describe())
        problem = status.problem()
        if problem is not None:
            raise problem
        if lock is not None:
            lock.claim()  # fences out every write of an earlier holder still on its way
    except BaseException as exc:
        if lock is not None:
            lock.release()
        if engine is not None:
            engine.dispose()
        if embedded is not None:
            embedded.stop()
        if isinstance(exc, psycopg.Error | sa.exc.DBAPIError):
            raise database.unavailable(exc, dsn) from None
        raise
    return Connected(
        options=options,
        dsn=dsn,
        engine=engine,
        tables=tables(options.schema),
        role=role,
        lock=lock,
        embedded=embedded,
        statements=Statements.for_schema(options.schema),
    )


def close_database(db: Connected) -> None:
    """Dispose of the pool, release the writer lock, then stop the embedded server (if this store started it)."""
    db.engine.dispose()
    if db.lock is not None:
        db.lock.release()
    if db.embedded is not None:
        db.embedded.stop()
