"""Connections: the SQLAlchemy engine over psycopg 3, client-side timeouts, and one-line, password-free errors.

A server that hangs (stopped, swapped out, behind a dead link) must cost a
call a few seconds, not for ever. Three layers bound it on the client side:
libpq's ``connect_timeout``; TCP keepalives and ``tcp_user_timeout``, which
notice a dead peer or link; and a :class:`Watchdog` that cuts a pooled
connection still waiting for its server after :data:`IO_DEADLINE_S` (a
stopped server's kernel still acknowledges every packet, so only a deadline
on the answer catches it). The cut call fails and the caller (the writer)
keeps its rows and retries. Health does not wait for the cut: a call waiting
longer than :data:`STALL_S` already makes ``store_health`` say the server is
not answering, without asking it. The server-side ``statement_timeout``
still bounds a query that runs too long.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.conninfo
import sqlalchemy as sa

from revaer_core import StoreUnavailable, redact

log = logging.getLogger(__name__)

#: What ``application_name`` starts with for every connection the store opens.
APPLICATION = "revaer"

#: How long one store call may wait on its server before the watchdog cuts its connection. Generous: a
#: loaded but working server (a commit's fsync behind a busy disk) must not have every retry cut too.
IO_DEADLINE_S = 15.0
#: A call waiting longer than this makes ``store_health`` report the server as not answering, at once.
STALL_S = 3.0
#: The same for whole-store reads (hydration, resume data, sources) and migrations, which may be large.
BULK_DEADLINE_S = 300.0
#: TCP settings libpq applies unless the DSN sets its own: a dead peer or link is noticed in about 10 s.
TCP_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",  # ms that sent data may stay unacknowledged
}


def conninfo(dsn: str, *, application_name: str, connect_timeout_s: int) -> str:
    """``dsn`` with our defaults added where the operator set none (their values win)."""
    try:
        given = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"runtime.postgres.dsn is not a valid connection string: {one_line(exc)}") from None
    defaults = {"application_name": application_name, "connect_timeout": str(connect_timeout_s), **TCP_DEFAULTS}
    return psycopg.conninfo.make_conninfo(dsn, **{k: v for k, v in defaults.items() if k not in given})


def one_line(exc: BaseException) -> str:
    """An exception's text on one line, with any DSN password masked."""
    return redact(" ".join(str(exc).split())) or type(exc).__name__


def where(dsn: str) -> str:
    """Where ``dsn`` points, for messages: user, host, port and database, never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "an unparsable DSN"
    host = parts.get("host") or parts.get("hostaddr") or "local socket"
    port = parts.get("port") or "5432"
    return f"{parts.get('user') or 'default user'}@{host}:{port}/{parts.get('dbname') or 'default database'}"


def unavailable(exc: BaseException, dsn: str) -> StoreUnavailable:
    """``exc`` (a driver or SQLAlchemy error) as the one line an operator reads."""
    inner = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"PostgreSQL at {where(dsn)}: {one_line(inner)}")


def application_name(role: str) -> str:
    """``revaer <role> <host>:<pid>``: who a connection belongs to, as ``pg_stat_activity`` shows."""
    return f"{APPLICATION} {role} {this_process()}"


def this_process() -> str:
    """``<host>:<pid>``, the end of every application name this process gives its connections."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}"


def connect(
    dsn: str, *, application_name: str, connect_timeout_s: int, statement_timeout_ms: int, autocommit: bool = False
) -> psycopg.Connection[Any]:
    """A new psycopg connection with our session settings.

    :raises psycopg.OperationalError: when the server cannot be reached or refuses us.
    """
    info = conninfo(dsn, application_name=application_name, connect_timeout_s=connect_timeout_s)
    connection = psycopg.connect(info, autocommit=True)
    connection.execute("SELECT set_config('statement_timeout', %s, false)", [str(statement_timeout_ms)])
    connection.autocommit = autocommit
    return connection


_patience = threading.local()


@contextlib.contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Give store calls made in this thread ``seconds`` (not :data:`IO_DEADLINE_S`) before the watchdog cuts them."""
    before = getattr(_patience, "seconds", None)
    _patience.seconds = seconds
    try:
        yield
    finally:
        _patience.seconds = before


class Watchdog:
    """Cuts pooled connections that wait on their server past their deadline.

    A connection is watched from pool checkout to checkin, so the deadline
    covers one store call (a few statements in one transaction). Cutting is a
    ``shutdown()`` of the socket: the waiting call wakes at once with
    "server closed the connection", SQLAlchemy drops the connection, and the
    next call opens a fresh one. One thread (started on first use) serves
    every engine of the process: :data:`WATCHDOG`.
    """

    def __init__(self, default_s: float = IO_DEADLINE_S) -> None:
        self.default_s = default_s
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        #: id(connection) -> (deadline, connection, seconds it was given, id of the engine whose pool lent it)
        self._watched: dict[int, tuple[float, psycopg.Connection[Any], float, int]] = {}
        self._thread: threading.Thread | None = None
        self.cuts = 0  #: connections cut so far

    def attach(self, engine: sa.Engine) -> None:
        """Watch every connection ``engine``'s pool hands out, as that engine's (see :meth:`stalled`)."""
        owner = id(engine)

        def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            self.watch(dbapi_connection, getattr(_patience, "seconds", None) or self.default_s, owner)

        sa.event.listen(engine, "checkout", on_checkout)
        sa.event.listen(engine, "checkin", self._on_checkin)

    def _on_checkin(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            self.unwatch(dbapi_connection)

    def watch(self, connection: psycopg.Connection[Any], seconds: float, owner: int = 0) -> None:
        deadline = time.monotonic() + seconds
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="revaer-pg-watchdog", daemon=True)
                self._thread.start()
            self._watched[id(connection)] = (deadline, connection, seconds, owner)
            heapq.heappush(self._heap, (deadline, id(connection)))
            if self._heap[0][1] == id(connection):
                self._lock.notify()

    def rearm(self, connection: psycopg.Connection[Any]) -> None:
        """Start a watched connection's deadline again: the client, not the server, took the time so far."""
        with self._lock:
            watched = self._watched.get(id(connection))
        if watched is not None:
            self.watch(connection, watched[2], watched[3])

    def stalled(self, engine: sa.Engine | None = None) -> float:
        """How long the oldest call under the ordinary deadline has waited (0 with none in flight).

        :param engine: count only the calls on this engine's connections: one
            store's health must not report another store's hung server.
        """
        now = time.monotonic()
        with self._lock:
            waits = [now - (deadline - seconds) for deadline, _, seconds, owner in self._watched.values()
                     if seconds <= self.default_s and (engine is None or owner == id(engine))]  # fmt: skip
        return max(waits, default=0.0)

    def unwatch(self, connection: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._watched.pop(id(connection), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                while True:
                    while self._heap and self._stale(self._heap[0]):
                        heapq.heappop(self._heap)
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._lock.wait(wait)
                _, key = heapq.heappop(self._heap)
                _, connection, _, _ = self._watched.pop(key)
                self._cut(connection)  # under the lock: a checkin cannot hand it to another call meanwhile

    def _stale(self, entry: tuple[float, int]) -> bool:
        watched = self._watched.get(entry[1])
        return watched is None or watched[0] != entry[0]

    def _cut(self, connection: psycopg.Connection[Any]) -> None:
        try:
            fd = connection.pgconn.socket
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            return  # already closed: nothing waits on it
        self.cuts += 1
        log.debug("PostgreSQL did not answer within its deadline: connection cut (the call is retried)")


def make_engine(
    dsn: str, *, application_name: str, pool_size: int, connect_timeout_s: int, statement_timeout_ms: int
) -> sa.Engine:
    """A pooled engine whose connections come from :func:`connect`, each watched by a :class:`Watchdog`.

    SQLAlchemy never parses the DSN (so it never prints it); statements are
    logged without their parameters. Connections are not pinged on checkout:
    when the server goes away, the first failing call invalidates the pool
    and the caller's retry gets fresh connections.
    """

    def creator() -> psycopg.Connection[Any]:
        return connect(
            dsn,
            application_name=application_name,
            connect_timeout_s=connect_timeout_s,
            statement_timeout_ms=statement_timeout_ms,
        )

    engine = sa.create_engine(
        "postgresql+psycopg://",
        creator=creator,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=max(5.0, connect_timeout_s + IO_DEADLINE_S),
        hide_parameters=True,
    )
    WATCHDOG.attach(engine)
    return engine


def raw(connection: sa.Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one, for COPY and row factories."""
    driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    return driver


#: The watchdog of every engine :func:`make_engine` builds.
WATCHDOG = Watchdog()
