"""One writer per schema: a session-level advisory lock, and a fencing epoch every daemon write checks.

The lock connection's ``application_name`` says ``revaer daemon <host>:<pid>``,
so a second daemon's refusal can name the holder from ``pg_stat_activity``
without a table that could go stale after a crash.

The lock alone does not stop a daemon that lost it (its session terminated,
the server restarted) from writing on: it only learns when it next looks.
So taking the lock also bumps the epoch in the one-row ``writer_fence``
table, and each write transaction of the daemon first runs :data:`FENCE_CHECK`
(see :meth:`DaemonLock.verify`): the row ``FOR SHARE``, which a new holder's
bump waits behind, and whether the lock's session still holds the lock.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import attrs
import psycopg
from psycopg import sql

from revaer_core import WriterFenced
from revaer_runtime_pg import database
from revaer_runtime_pg.errors import DaemonAlreadyRunning
from revaer_runtime_pg.migrate import lock_key

log = logging.getLogger(__name__)

_LOCK_ROW = """
  l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %(hi)s AND l.objid::bigint = %(lo)s
"""
_HOLDER = f"""
SELECT a.application_name, a.client_addr::text, a.pid
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE {_LOCK_ROW}
"""
_CLAIM = "UPDATE {} SET epoch = epoch + 1, holder = %s, taken_at = now() RETURNING epoch"
#: A daemon frozen inside a write transaction (SIGSTOP, a paused VM) would hold the fence row FOR SHARE
#: and so stall the next holder's bump: the server ends such a transaction after this long idle.
IDLE_IN_WRITE_MS = 5_000
#: How long a bump waits for writes in flight under the previous epoch before it ends their sessions.
#: A daemon frozen in the middle of a statement (a COPY) is not idle, so the timeout above never ends it.
CLAIM_WAIT_MS = 5_000
#: The sessions in a write transaction (they hold the fence row FOR SHARE), with their application names.
_STALLED_WRITERS = """
SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'RowShareLock' AND l.relation = %(table)s::regclass
  AND l.pid <> pg_backend_pid()
"""
_FENCE_CHECK = (
    "SELECT set_config('idle_in_transaction_session_timeout', %(idle)s, true), f.epoch, f.holder, "
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = %(pid)s AND {lock_row}) "
    "FROM {table} AS f FOR SHARE OF f"
)


@attrs.frozen
class Fence:
    """What this daemon's writes must find: its epoch, and the backend holding its lock."""

    epoch: int
    pid: int


class LockLost(WriterFenced):
    """The lock went with its session and the epoch is still ours: the store may take it back and go on."""


@attrs.frozen
class Lost:
    """Why the lock is not held; ``elsewhere`` when another daemon holds it."""

    reason: str
    elsewhere: bool


class DaemonLock:
    """The writer lock of one schema, held for the daemon's lifetime, and the epoch that fences its writes."""

    def __init__(self, dsn: str, schema: str, *, connect_timeout_s: int) -> None:
        self._dsn = dsn
        self._schema = schema
        self._connect_timeout_s = connect_timeout_s
        unsigned = lock_key("daemon", schema) & 0xFFFF_FFFF_FFFF_FFFF
        self._key = lock_key("daemon", schema)
        self._halves = {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}
        self._table = sql.Identifier(schema, "writer_fence")
        self._check = sql.SQL(_FENCE_CHECK).format(lock_row=sql.SQL(_LOCK_ROW), table=self._table)
        self._connection: psycopg.Connection[Any] | None = None
        self._fence: Fence | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> None:
        """Take the lock (before the schema is checked: migrations run under it).

        :raises DaemonAlreadyRunning: naming the holder, when another session holds it.
        :raises psycopg.OperationalError: when the server cannot be reached.
        """
        with self._mutex:
            self._acquire()

    def claim(self) -> None:
        """Bump the epoch, once the schema is at head: from now on only this daemon's writes land.

        The bump waits for writes in flight under the previous epoch to commit.
        """
        with self._mutex:
            self._claim()

    def _acquire(self) -> None:
        connection = database.connect(
            self._dsn,
            application_name=database.application_name("daemon"),
            connect_timeout_s=self._connect_timeout_s,
            statement_timeout_ms=10_000,
            autocommit=True,
        )
        try:
            # The lock lives as long as this idle session: a server-wide idle_session_timeout must not end it.
            if connection.info.server_version >= 140000:
                connection.execute("SELECT set_config('idle_session_timeout', '0', false)")
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

    def _claim(self) -> None:
        connection = self._connection
        assert connection is not None, "claim() before acquire()"
        try:
            row = self._bump(connection, lock_timeout_ms=CLAIM_WAIT_MS)
        except psycopg.errors.LockNotAvailable:
            self._end_stalled_writers(connection)
            row = self._bump(connection, lock_timeout_ms=0)
        if row is None:
            raise DaemonAlreadyRunning(
                f"schema {self._schema!r} has no writer_fence row: run `revaer runtime migrate` to restore it"
            )
        self._fence = Fence(epoch=row[0], pid=connection.info.backend_pid)

    def _bump(self, connection: psycopg.Connection[Any], *, lock_timeout_ms: int) -> tuple[Any, ...] | None:
        """The epoch bump, waiting at most ``lock_timeout_ms`` for writes in flight (0: the statement timeout)."""
        name = database.application_name("daemon")
        with connection.transaction():
            connection.execute("SELECT set_config('lock_timeout', %s, true)", [str(lock_timeout_ms)])
            return connection.execute(sql.SQL(_CLAIM).format(self._table), [name]).fetchone()

    def _end_stalled_writers(self, connection: psycopg.Connection[Any]) -> None:
        """End the sessions whose write under the previous epoch has not committed in :data:`CLAIM_WAIT_MS`.

        This daemon holds the lock, so those writes belong to a daemon that
        lost it: ending their sessions rolls them back, where waiting would let
        a frozen daemon keep this one from starting, and the bump then fences
        whatever that daemon tries next. A session of another role cannot be
        ended without privileges; the bump then waits for it as before.
        """
        ours = " " + database.this_process()
        rows = connection.execute(_STALLED_WRITERS, {"table": self._table.as_string(connection)}).fetchall()
        for pid, name in rows:
            if (name or "").endswith(ours):
                continue  # this daemon's own writer, after it lost the lock and takes it back: fenced anyway
            try:
                connection.execute("SELECT pg_terminate_backend(%s)", [pid])
            except psycopg.Error as exc:
                log.warning("runtime store: could not end session %s (%s): %s", pid, name, database.one_line(exc))
                continue
            log.warning(
                "runtime store: ended session %s (%s), whose write under the previous writer epoch of schema %r "
                "was still open after %.0f s",
                pid,
                name or "unnamed",
                self._schema,
                CLAIM_WAIT_MS / 1000,
            )

    def _holder(self, connection: psycopg.Connection[Any]) -> str:
        row = connection.execute(_HOLDER, self._halves).fetchone()
        if row is None:
            return "which just exited"
        name, addr, pid = row
        where = f", connected from {addr}" if addr else ""
        return f"{name or 'unnamed session'}, backend pid {pid}{where}"

    def verify(self, connection: psycopg.Connection[Any]) -> None:
        """Inside a write transaction, before it writes: raise unless this daemon still holds the lock.

        :raises WriterFenced: another daemon bumped the epoch.
        :raises LockLost: the lock went with its session, and nobody bumped the epoch since.
        """
        fence = self._fence
        if fence is None:
            raise WriterFenced(f"this daemon has not taken the writer lock of schema {self._schema!r}")
        params = {"pid": fence.pid, "idle": str(IDLE_IN_WRITE_MS), **self._halves}
        row = connection.execute(self._check, params).fetchone()
        if row is None:
            raise WriterFenced(
                f"schema {self._schema!r} has no writer_fence row: run `revaer runtime migrate` to restore it"
            )
        _, epoch, holder, held = row
        if epoch != fence.epoch:
            raise WriterFenced(
                f"another Revaer daemon ({holder or 'unnamed'}) took the writer lock of schema {self._schema!r}: "
                "this daemon's writes are refused",
                holder=holder,
            )
        if not held:
            raise LockLost(
                f"the writer lock of schema {self._schema!r} went with its connection: nothing is written "
                "until it is taken back"
            )

    def check(self) -> Lost | None:
        """``None`` while the lock is held; else why not, after one attempt to take it back.

        Taking it back bumps the epoch again, so writes the daemon buffered meanwhile land from then on.
        """
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
                self._claim()
            except DaemonAlreadyRunning as exc:
                self._release()
                return Lost(str(exc), elsewhere=True)
            except psycopg.Error as exc:
                self._release()
                return Lost(f"writer lock lost with the connection: {database.one_line(exc)}", elsewhere=False)
            log.warning(
                "runtime store: writer lock on schema %r taken again after its connection dropped", self._schema
            )
            return None

    def release(self) -> None:
        """Give the lock up (closing the connection would too)."""
        with self._mutex:
            self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.closed:
            return
        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", [self._key])
        except psycopg.Error:
            pass  # the session is gone, and its lock with it
        finally:
            connection.close()
