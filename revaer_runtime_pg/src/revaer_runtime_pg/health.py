"""A store's health: the server answering, the schema at head, a daemon's writer lock still held."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from revaer_core import HELD_ELSEWHERE, WRITER_LOCK_FACT, StoreHealth
from revaer_runtime_pg import database, migrate
from revaer_runtime_pg.connection import Connected


def health(db: Connected | None) -> StoreHealth:
    """What ``store_health`` answers for ``db`` (``None``: closed); a silent server is reported, not raised."""
    if db is None:
        return StoreHealth(ok=False, detail="the PostgreSQL runtime store is closed")
    facts = {
        "database": database.where(db.dsn),
        "mode": "embedded" if db.embedded is not None else "external",
        "schema": db.options.schema,
    }
    stalled = database.WATCHDOG.stalled(db.engine)
    if stalled > database.STALL_S:
        detail = f"PostgreSQL at {database.where(db.dsn)} has not answered a call for {stalled:.1f} s"
        return StoreHealth(ok=False, detail=detail, facts=facts)
    try:
        with database.patience(database.STALL_S), db.engine.connect() as connection:
            server = connection.execute(sa.text("SHOW server_version")).scalar_one()
            status = migrate.status(connection, db.options.schema)
    except (psycopg.Error, sa.exc.DBAPIError) as exc:
        return StoreHealth(ok=False, detail=str(database.unavailable(exc, db.dsn)), facts=facts)
    facts["server"] = f"PostgreSQL {server}"
    facts["schema revision"] = f"{status.revision or 'none'} (head {status.head})"
    problem = status.problem()
    if problem is not None:
        return StoreHealth(ok=False, detail=str(problem), facts=facts)
    if db.lock is not None:
        lost = db.lock.check()
        facts[WRITER_LOCK_FACT] = "held" if lost is None else HELD_ELSEWHERE if lost.elsewhere else "lost"
        if lost is not None:
            return StoreHealth(ok=False, detail=lost.reason, facts=facts)
    return StoreHealth(ok=True, detail=f"PostgreSQL {server}, {status.describe()}", facts=facts)
