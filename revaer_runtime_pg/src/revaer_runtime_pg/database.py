"""Connections: the SQLAlchemy engine over psycopg 3, and one-line, password-free connection errors."""

from __future__ import annotations

import os
import socket
from typing import Any

import psycopg
import psycopg.conninfo
import sqlalchemy as sa

from revaer_core import StoreUnavailable, redact

#: What ``application_name`` starts with for every connection the store opens.
APPLICATION = "revaer"


def conninfo(dsn: str, *, application_name: str, connect_timeout_s: int) -> str:
    """``dsn`` with our defaults added where the operator set none (their values win)."""
    try:
        given = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"runtime.postgres.dsn is not a valid connection string: {one_line(exc)}") from None
    defaults = {"application_name": application_name, "connect_timeout": str(connect_timeout_s)}
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
    return f"{APPLICATION} {role} {socket.gethostname()[:30]}:{os.getpid()}"


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


def make_engine(
    dsn: str, *, application_name: str, pool_size: int, connect_timeout_s: int, statement_timeout_ms: int
) -> sa.Engine:
    """A pooled engine whose connections come from :func:`connect`.

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

    return sa.create_engine(
        "postgresql+psycopg://",
        creator=creator,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=max(5.0, connect_timeout_s + statement_timeout_ms / 1000),
        hide_parameters=True,
    )
