"""Opening the PostgreSQL store: options, schema revisions, the writer lock and connection errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from revaer_core import ConfigError, StoreRole, StoreUnavailable
from revaer_core.contract import samples
from revaer_runtime_pg import migrate
from revaer_runtime_pg.errors import DaemonAlreadyRunning, SchemaNotReady
from revaer_runtime_pg.options import parse_options
from revaer_runtime_pg.testing import open_pg_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_engine: sa.Engine) -> sa.Engine:
    return pg_engine


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe closes


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"pool_sise": 3}, "runtime.postgres.pool_sise"),
        ({"pool_size": "many"}, "runtime.postgres.pool_size"),
        ({"pool_size": 0}, "runtime.postgres.pool_size"),
        ({"auto_migrate": "perhaps"}, "runtime.postgres.auto_migrate"),
        ({"schema": "Robert'); DROP TABLE x;--"}, "runtime.postgres.schema"),
        ({"schema": "public"}, "runtime.postgres.schema"),
        ({"statement_timeout_ms": -1}, "runtime.postgres.statement_timeout_ms"),
        ({"dsn": "  "}, "runtime.postgres.dsn"),
    ],
)
def test_a_bad_option_is_refused_by_its_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(table, env={})
    assert caught.value.key == key


def test_the_environment_dsn_wins_and_never_shows_in_repr() -> None:
    parsed = parse_options({"dsn": "postgresql://a@h/db", "pool_size": "7"}, env={"REVAER_DATABASE_URL": "host=x"})
    assert (parsed.dsn, parsed.pool_size, parsed.schema) == ("host=x", 7, "revaer_runtime")
    assert "host=x" not in repr(parsed)


# -- schema revisions ---------------------------------------------------------------------------


def test_a_daemon_creates_an_empty_schema_but_a_client_refuses_it(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    with pytest.raises(SchemaNotReady, match="revaer runtime migrate"):
        open_pg_store(pg_url, pg_schema, tmp_path, role=StoreRole.CLIENT)
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    store.close()
    client = open_pg_store(pg_url, pg_schema, tmp_path, role=StoreRole.CLIENT)
    assert client.health().facts["schema revision"] == f"{migrate.head()} (head {migrate.head()})"
    client.close()


def test_a_schema_behind_head_is_refused_unless_auto_migrate(
    engine: sa.Engine, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    migrate.upgrade(engine, pg_schema, "0001")
    with pytest.raises(SchemaNotReady, match=r"at revision 0001, behind .* run `revaer runtime migrate`"):
        open_pg_store(pg_url, pg_schema, tmp_path)
    with engine.connect() as connection:
        assert migrate.current_revision(connection, pg_schema) == "0001"
    store = open_pg_store(pg_url, pg_schema, tmp_path, auto_migrate=True)
    store.close()
    with engine.connect() as connection:
        assert migrate.current_revision(connection, pg_schema) == migrate.head()


@pytest.mark.parametrize("role", list(StoreRole))
def test_a_schema_from_a_newer_version_is_refused_and_left_alone(
    engine: sa.Engine, pg_url: str, pg_schema: str, tmp_path: Path, role: StoreRole
) -> None:
    migrate.upgrade(engine, pg_schema)
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f'UPDATE "{pg_schema}".alembic_version SET version_num = %s', ("0099_future",))
    with pytest.raises(SchemaNotReady, match=r"0099_future.*upgrade revaer-runtime-pg; nothing was written"):
        open_pg_store(pg_url, pg_schema, tmp_path, role=role, auto_migrate=True)
    with pytest.raises(SchemaNotReady, match="upgrade revaer-runtime-pg"):
        migrate.upgrade(engine, pg_schema)
    with engine.connect() as connection:
        assert migrate.current_revision(connection, pg_schema) == "0099_future"


# -- one writer ---------------------------------------------------------------------------------


def test_a_second_daemon_is_refused_while_clients_keep_reading(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    first = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        first.upsert_torrents([samples.status(1)])
        with pytest.raises(DaemonAlreadyRunning) as caught:
            open_pg_store(pg_url, pg_schema, tmp_path)
        message = str(caught.value)
        assert "\n" not in message
        assert f"revaer daemon {socket.gethostname()[:30]}:{os.getpid()}" in message
        client = open_pg_store(pg_url, pg_schema, tmp_path, role=StoreRole.CLIENT)
        assert [s.id for s in client.load_torrents()] == [samples.status(1).id]
        client.close()
        assert first.health().facts["writer lock"] == "held"
    finally:
        first.close()
    second = open_pg_store(pg_url, pg_schema, tmp_path)  # the lock went with the first daemon
    second.close()


def test_daemons_on_different_schemas_do_not_collide(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    first = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        other = f"{pg_schema}_b"
        second = open_pg_store(pg_url, other, tmp_path)
        second.close()
        with psycopg.connect(pg_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{other}" CASCADE')
    finally:
        first.close()


# -- connection errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://revaer:s3cr%40t-pw@127.0.0.1:{port}/revaer",
        "host=127.0.0.1 port={port} user=revaer password=s3cr@t-pw dbname=revaer",
    ],
    ids=["url", "keywords"],
)
def test_an_unreachable_server_is_one_line_without_the_password(dsn: str, tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_pg_store(dsn.format(port=_closed_port()), "revaer_runtime", tmp_path, connect_timeout_s=2)
    message = str(caught.value)
    assert "\n" not in message and "s3cr" not in message
    assert "revaer@127.0.0.1" in message and "refused" in message.lower()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_database_is_one_line_naming_it(pg_url: str, tmp_path: Path) -> None:
    parts = psycopg.conninfo.conninfo_to_dict(pg_url)
    parts.update(dbname="no_such_db_here", password="hunter2-secret")
    dsn = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})
    with pytest.raises(StoreUnavailable, match="no_such_db_here") as caught:
        open_pg_store(dsn, "revaer_runtime", tmp_path)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_malformed_dsn_is_one_line_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_pg_store("host=localhost password=hunter2 this-is-not-a-pair", "revaer_runtime", tmp_path)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)
