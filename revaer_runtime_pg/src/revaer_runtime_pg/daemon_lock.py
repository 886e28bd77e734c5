"""One writer per schema: the daemon holds a session-level advisory lock on its own connection.

The lock connection's ``application_name`` says ``revaer daemon <host>:<pid>``,
so a second daemon's refusal can name the holder from ``pg_stat_activity``
without a table that could go stale after a crash.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from revaer_runtime_pg import database
from revaer_runtime_pg.errors import DaemonAlreadyRunning
from revaer_runtime_pg.migrate import lock_key

log = logging.getLogger(__name__)

_HOLDER = """
SELECT a.application_name, a.client_addr::text, a.pid
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s
"""


class DaemonLock:
    """The writer lock of one schema, held for the daemon's lifetime."""

    def __init__(self, dsn: str, schema: str, *, connect_timeout_s: int) -> None:
        self._dsn = dsn
        self._schema = schema
        self._connect_timeout_s = connect_timeout_s
        self._key = lock_key("daemon", schema)
        self._connection: psycopg.Connection[Any] | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> None:
        """Take the lock.

        :raises DaemonAlreadyRunning: naming the holder, when another session holds it.
        :raises psycopg.OperationalError: when the server cannot be reached.
        """
        with self._mutex:
            self._acquire()

    def _acquire(self) -> None:
        connection = database.connect(
            self._dsn,
            application_name=database.application_name("daemon"),
            connect_timeout_s=self._connect_timeout_s,
            statement_timeout_ms=10_000,
            autocommit=True,
        )
        try:
            got = connection.execute("SELECT pg_try_advisory_lock(%s)", [self._key]).fetchone()
            if got is None or not got[0]:
                holder = self._holder(connection)
                raise DaemonAlreadyRunning(
                    f"another Revaer daemon ({holder}) already writes to schema {self._schema!r} at "
                    f"{database.where(self._dsn)}: stop it first, or give this one its own runtime.postgres.schema"
                )
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _holder(self, connection: psycopg.Connection[Any]) -> str:
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        row = connection.execute(_HOLDER, [unsigned >> 32, unsigned & 0xFFFF_FFFF]).fetchone()
        if row is None:
            return "which just exited"
        name, addr, pid = row
        where = f", connected from {addr}" if addr else ""
        return f"{name or 'unnamed session'}, backend pid {pid}{where}"

    def check(self) -> str | None:
        """``None`` while the lock is held; else why not, after one attempt to take it back."""
        with self._mutex:
            connection = self._connection
            if connection is not None and not connection.closed:
                try:
                    connection.execute("SELECT 1")
                    return None
                except psycopg.Error:
                    connection.close()
            self._connection = None
            try:
                self._acquire()
            except DaemonAlreadyRunning as exc:
                return str(exc)
            except psycopg.Error as exc:
                return f"writer lock lost with the connection: {database.one_line(exc)}"
            log.warning(
                "runtime store: writer lock on schema %r taken again after its connection dropped", self._schema
            )
            return None

    def release(self) -> None:
        """Give the lock up (closing the connection would too)."""
        with self._mutex:
            connection, self._connection = self._connection, None
            if connection is None or connection.closed:
                return
            try:
                connection.execute("SELECT pg_advisory_unlock(%s)", [self._key])
            except psycopg.Error:
                pass  # the session is gone, and its lock with it
            finally:
                connection.close()
