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

A :class:`PrivateCluster` is quick: the first one in a process runs ``initdb`` into a template,
every later one copies it (a fraction of a second), then starts on a free port with
``fsync`` and ``full_page_writes`` off: a commit still reaches the OS before it returns, so
killing the server (``kill``) loses nothing committed, but an OS crash would — these
clusters are thrown away after the test anyway. (``synchronous_commit`` stays on: with it
off, a SIGKILL loses the last commits, and fault tests would see that.) Its binaries are
:func:`~revaer_runtime_pg.embedded.find_binaries`'s, so as root they are ones the ``postgres``
user can run, as for the embedded server.

Every test that uses one of :data:`POSTGRES_FIXTURES` is marked ``postgres`` at collection, so
``-m "not postgres"`` leaves none that would fail for want of a server.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import psycopg.sql
import pytest
import sqlalchemy as sa

from revaer_core import RuntimeStore, StoreRole
from revaer_core.settings import RuntimeSettings
from revaer_runtime_pg import PostgresStore, database
from revaer_runtime_pg.embedded import Postmaster, find_binaries

URL_ENV = "REVAER_TEST_DATABASE_URL"
_SERVER_USER = "postgres"
_FAST_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "60",
    "listen_addresses": "'127.0.0.1'",
}


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` user when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", _SERVER_USER, "--", *argv] if os.geteuid() == 0 else argv


class ClusterError(RuntimeError):
    """A private cluster could not be made, started or stopped; the message quotes its log."""


class PrivateCluster:
    """A PostgreSQL server of the test's own, in a temp dir, on a free 127.0.0.1 port (trust auth).

    ``start``/``stop``/``kill``/``restart`` keep the port, so :attr:`url` stays valid across
    outages. ``close`` stops it and deletes everything; use it as a context manager.
    """

    _template: Path | None = None
    _template_lock = threading.Lock()

    #: The role :meth:`role_url` logs in as when the cluster was made with a ``role_password``.
    ROLE = "revaer_app"

    def __init__(self, *, role_password: str | None = None) -> None:
        """:param role_password: also make role :attr:`ROLE` with this password, and ask every TCP
        login but the superuser's for it (``scram-sha-256``)."""
        self.role_password = role_password
        self._role_made = False
        self.binaries = find_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="revaer-pg-"))
        self.root.chmod(0o755)  # the server user must reach its data dir inside
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"
        self.port = _free_port()
        self._closed = False
        try:
            self._create()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    # -- public --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return Postmaster.read(self.pgdata) is not None

    def role_url(self, password: str) -> str:
        """The URL of role :attr:`ROLE` with ``password`` (right or wrong), over TCP."""
        return f"postgresql://{self.ROLE}:{password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server (a no-op when it runs); a taken port is swapped for a free one."""
        if self.running:
            return
        for attempt in range(3):
            try:
                self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.log_file))
                break
            except ClusterError:
                if attempt == 2 or "could not bind" not in self._log_tail():
                    raise
                self.port = _free_port()
                self._write_settings()
        if self.role_password is not None and not self._role_made:
            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute("SET password_encryption = 'scram-sha-256'")
                connection.execute(
                    psycopg.sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                        psycopg.sql.Identifier(self.ROLE), psycopg.sql.Literal(self.role_password)
                    )
                )
            self._role_made = True

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: a hung server, whose connections stay open and silent."""
        for pid in self._server_pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        for pid in self._server_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server hung for the ``with`` block: :meth:`freeze`, then :meth:`thaw` whatever happens."""
        assert self.running, "the private cluster is not running"
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    def _server_pids(self) -> list[int]:
        running = Postmaster.read(self.pgdata)
        if running is None:
            return []
        pids = [running.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rpartition(")")[2].split()[1]) == running.pid:
                    pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """Stop the server cleanly (fast mode: sessions are cut, as in a real outage)."""
        if self.running:
            self._pg_ctl("stop", "-w", "-m", "fast", "-t", "30")

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; its backends exit on their own."""
        running = Postmaster.read(self.pgdata)
        if running is None:
            return
        os.kill(running.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Postmaster.read(self.pgdata) is not None and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and delete its files."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ClusterError):
            if self.running:
                self._pg_ctl("stop", "-w", "-m", "immediate", "-t", "30")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _create(self) -> None:
        template = self._template_dir(self.binaries.bindir)
        subprocess.run(["cp", "-a", str(template), str(self.pgdata)], check=True, capture_output=True)
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam(_SERVER_USER)
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._write_settings()

    @classmethod
    def _template_dir(cls, bindir: Path) -> Path:
        """A freshly initdb'd cluster to copy from, made once per process and removed at exit."""
        with cls._template_lock:
            if cls._template is None:
                root = Path(tempfile.mkdtemp(prefix="revaer-pg-template-"))
                root.chmod(0o755)
                pgdata = root / "data"
                pgdata.mkdir(mode=0o700)
                if os.geteuid() == 0:
                    user = pwd.getpwnam(_SERVER_USER)
                    os.chown(pgdata, user.pw_uid, user.pw_gid)
                argv = [str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--no-sync"]
                result = subprocess.run(
                    _as_server_user([*argv, "--encoding=UTF8", "--locale=C"]),
                    capture_output=True,
                    text=True,
                    check=False,
                    cwd="/",
                )
                if result.returncode != 0:
                    shutil.rmtree(root, ignore_errors=True)
                    raise ClusterError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
                cls._template = pgdata
                atexit.register(shutil.rmtree, root, True)
            return cls._template

    def _write_settings(self) -> None:
        settings = {**_FAST_SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.socket_dir}'"}
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf = self.pgdata / "postgresql.auto.conf"
        conf.write_text(text, encoding="utf-8")
        written = [conf]
        if (
            self.role_password is not None
        ):  # the superuser keeps trust (the harness's url); every other login a password
            hba = self.pgdata / "pg_hba.conf"
            hba.write_text(
                "local all all trust\n"
                "host all postgres 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
                "host all all ::1/128 scram-sha-256\n",
                encoding="utf-8",
            )
            written.append(hba)
        if os.geteuid() == 0:
            user = pwd.getpwnam(_SERVER_USER)
            for path in written:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        except OSError:
            return "(no server log)"

    def _pg_ctl(self, *args: str) -> None:
        argv = _as_server_user([str(self.binaries.bindir / "pg_ctl"), "-D", str(self.pgdata), *args])
        result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/", timeout=60)
        if result.returncode != 0:
            raise ClusterError(
                f"pg_ctl {args[0]} failed ({result.stderr.strip() or result.stdout.strip()}); "
                f"server log:\n{self._log_tail()}"
            )


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


def stored_progress(url: str, schema: str, data_dir: Path) -> dict[uuid.UUID, int]:
    """Every torrent's downloaded bytes as the PostgreSQL store in ``schema`` holds them, read as a client."""
    client = open_pg_store(url, schema, data_dir, role=StoreRole.CLIENT)
    try:
        return {s.id: s.progress.downloaded for s in client.load_torrents()}
    finally:
        client.close()


def open_pg_store(
    url: str, schema: str, data_dir: Path, *, role: StoreRole = StoreRole.DAEMON, **more: Any
) -> RuntimeStore:
    """A PostgreSQL store on ``url`` in ``schema`` (options :func:`pg_options` builds), opened in ``role``."""
    return RuntimeStore.open(
        PostgresStore(), name="postgres", options=pg_options(url, schema, **more), data_dir=data_dir, role=role
    )


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


def pg_options(url: str, schema: str, **more: Any) -> dict[str, Any]:
    """The ``[runtime.postgres]`` table of a store on ``url`` in ``schema``."""
    return {"dsn": url, "schema": schema, **more}


#: For tests of what happens when the server must run as another user: only root hands it to ``postgres``.
as_root_only = pytest.mark.skipif(
    os.geteuid() != 0,
    reason=f"only root runs PostgreSQL as the {_SERVER_USER!r} user; as uid {os.geteuid()} the server runs as "
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
