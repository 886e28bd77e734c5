"""PostgreSQL for tests: which server to use, private clusters for fault tests, unique schemas.

Fixtures (a pytest plugin: listed in ``tests/conftest.py``):

- ``pg_url`` (session): ``REVAER_TEST_DATABASE_URL``; else a throwaway container through
  testcontainers when a Docker engine answers; else a :class:`PrivateCluster` from the local
  binaries. With none of the three, every test that needs it fails, in CI or not, with one line
  saying why and how to give it one: a silent skip would pass a run that tested no SQL at all.
  Deselecting them is a choice made on purpose: ``-m "not postgres"``.
- ``pg_schema``: a fresh schema name on that database, dropped (with all it holds) afterwards.
- ``private_cluster``: a :class:`PrivateCluster` of the test's own, for tests that stop,
  kill or restart the server; never the shared one.

The clusters themselves are :class:`revaer_runtime_pg.testing.PrivateCluster`, which the
benchmarks use too.

Every test that uses one of :data:`POSTGRES_FIXTURES` is marked ``postgres`` at collection, so
``-m "not postgres"`` leaves none that would fail for want of a server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.sql
import pytest
import sqlalchemy as sa

from revaer_core import RuntimeStore
from revaer_core.settings import RuntimeSettings
from revaer_runtime_pg import database
from revaer_runtime_pg.testing import SERVER_USER, PrivateCluster, open_pg_store, pg_options

URL_ENV = "REVAER_TEST_DATABASE_URL"


#: The fixtures that need a server: a test using any of them (directly or through another fixture) is a
#: ``postgres`` test.
POSTGRES_FIXTURES = frozenset({"pg_url", "pg_schema", "private_cluster"})


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL ``postgres``, whether or not its module says so."""
    for item in items:
        uses = POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


def _docker_answers() -> bool:
    """Whether a Docker engine answers its ping, within a second (no docker SDK needed to ask)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(1)
            sock.connect(host.removeprefix("unix://"))
        elif host.startswith("tcp://"):
            address, _, port = host.removeprefix("tcp://").rpartition(":")
            sock = socket.create_connection((address, int(port)), timeout=1)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _container() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer  # only where Docker answers

    with PostgresContainer("postgres:15-alpine", driver=None) as container:
        yield container.get_connection_url()


#: How to give tests a shared database, and how to give them the binaries for servers of their own.
GIVE_A_DATABASE = f"Give them one: {URL_ENV}=postgresql://USER@HOST:5432/DB"
GIVE_BINARIES = (
    "Tests that stop and restart a server need one of their own, whatever the database URL: give them "
    "PostgreSQL's server binaries (pip install 'revaer-runtime-pg[embedded]', or the machine's PostgreSQL)"
)


def _unavailable(reasons: list[str], remedy: str) -> None:
    """Fail the test, in one line: why there is no PostgreSQL, and how to give the tests one."""
    why = " ".join("; ".join(reasons).split())  # a reason may quote a multi-line log
    pytest.fail(
        f'no PostgreSQL for tests: {why}. {remedy} (or leave these tests out on purpose: -m "not postgres")',
        pytrace=False,
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of the database tests share: the environment's, else a container's, else a private cluster's."""
    url = os.environ.get(URL_ENV, "").strip()
    if url:
        yield url
        return
    reasons = [f"{URL_ENV} is not set"]
    if _docker_answers():
        with _container() as container_url:
            yield container_url
        return
    reasons.append("no Docker engine answers")
    cluster = _private_cluster_or(reasons, "no private cluster", GIVE_A_DATABASE)
    with cluster:
        yield cluster.url


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A running server of this test's own, to stop and start at will; gone after the test."""
    with _private_cluster_or([], "cannot make a private cluster", GIVE_BINARIES) as cluster:
        yield cluster


def _private_cluster_or(reasons: list[str], failing: str, remedy: str) -> PrivateCluster:
    """A new :class:`PrivateCluster`; else the test fails with ``reasons``, what stopped the cluster, ``remedy``."""
    try:
        return PrivateCluster()
    except Exception as exc:  # no binaries, no postgres user, initdb refused: say which
        reasons.append(f"{failing} ({exc})")
    _unavailable(reasons, remedy)  # out of the except block: the one line, without the traceback it handled
    raise AssertionError("not reached: _unavailable fails the test")


@pytest.fixture
def pg_schema(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema name no other test uses, on ``pg_url``'s database; dropped afterwards with all it holds.

    Also clears ``REVAER_DATABASE_URL``, so the store under test uses the DSN the test gives it.
    """
    monkeypatch.delenv("REVAER_DATABASE_URL", raising=False)
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def pg_runtime(url: str, schema: str, data_dir: Path, *, flush_interval_ms: int = 50) -> RuntimeSettings:
    """``[runtime]`` settings of a daemon whose store is PostgreSQL on ``url`` in ``schema``."""
    return RuntimeSettings(
        backend="postgres",
        data_dir=data_dir,
        flush_interval_ms=flush_interval_ms,
        backend_options={"postgres": pg_options(url, schema)},
    )


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    """A SQLAlchemy engine on ``pg_url``, as the store makes one (no statement timeout), disposed afterwards."""
    made = database.make_engine(
        pg_url, application_name="revaer tests", pool_size=2, connect_timeout_s=5, statement_timeout_ms=0
    )
    yield made
    made.dispose()


@pytest.fixture
def pg_store(pg_url: str, pg_schema: str, tmp_path: Path) -> Iterator[RuntimeStore]:
    """A PostgreSQL store in a fresh schema, closed after the test."""
    opened = open_pg_store(pg_url, pg_schema, tmp_path)
    yield opened
    opened.close()


#: For tests of what happens when the server must run as another user: only root hands it to ``postgres``.
as_root_only = pytest.mark.skipif(
    os.geteuid() != 0,
    reason=f"only root runs PostgreSQL as the {SERVER_USER!r} user; as uid {os.geteuid()} the server runs as "
    "this user, who reads the venv itself (nothing to prove here, and nothing to do with a missing PostgreSQL)",
)


def private_pgserver(home: Path) -> Path:
    """A site dir in ``home`` (made mode 700) whose ``pgserver`` is the installed one: a venv the server user
    cannot read, as under root's home. The package and its ``pgserver.libs`` are symlinked, not copied: what
    counts is the path, which no one else can pass through."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        pytest.fail("pgserver is not installed: pip install 'revaer-runtime-pg[embedded]'", pytrace=False)
    package = Path(spec.origin).parent
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    site = home / "site-packages"
    site.mkdir()
    for entry in (package, package.parent / "pgserver.libs"):
        if entry.exists():
            (site / entry.name).symlink_to(entry, target_is_directory=True)
    return site
