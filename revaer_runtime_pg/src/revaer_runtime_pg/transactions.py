"""Transactions of a store: a daemon's writes checked against the writer fence, connection faults as one error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa

from revaer_core import StoreUnavailable, WriterFenced
from revaer_runtime_pg import database
from revaer_runtime_pg.connection import Connected
from revaer_runtime_pg.daemon_lock import LockLost


@contextlib.contextmanager
def writing(db: Connected) -> Iterator[sa.Connection]:
    """A write transaction; a daemon's first checks, inside it, that it still holds the writer lock.

    A lock that went with its session (a server restart, a terminated
    backend) while nobody else took it is taken back, outside the
    transaction, and the write goes on under the new epoch.

    :raises WriterFenced: another daemon holds the lock (nothing is written).
    """
    lock = db.lock
    with db.engine.begin() as connection:
        try:
            if lock is not None:
                lock.verify(database.raw(connection))
        except LockLost:
            pass  # ends the transaction, which only read the fence
        else:
            yield connection
            return
    assert lock is not None
    lost = lock.check()
    if lost is not None and lost.elsewhere:
        raise WriterFenced(lost.reason)
    if lost is not None:
        raise StoreUnavailable(lost.reason)
    with db.engine.begin() as connection:
        lock.verify(database.raw(connection))
        yield connection


@contextlib.contextmanager
def faults(db: Connected) -> Iterator[None]:
    """Connection faults as :class:`StoreUnavailable` (one line, no password); the caller retries."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError) as exc:
        raise database.unavailable(exc, db.dsn) from exc
