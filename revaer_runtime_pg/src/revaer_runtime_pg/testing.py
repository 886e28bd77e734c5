"""Servers of a test's or a benchmark's own: :class:`PrivateCluster`, and the store options that point at one.

Revaer's tests and benchmarks use it to stop, kill, freeze and restart a
PostgreSQL server under a running store, never the shared one. A cluster is
quick: the first one in a process runs ``initdb`` into a template, every later
one copies it (a fraction of a second), then starts on a free 127.0.0.1 port
with ``fsync`` and ``full_page_writes`` off: a commit still reaches the OS
before it returns, so killing the server (``kill``) loses nothing committed,
but an OS crash would; these clusters are thrown away afterwards anyway.
(``synchronous_commit`` stays on: with it off, a SIGKILL loses the last
commits, and fault tests would see that.) It keeps each commit's time
(``track_commit_timestamp``), so a fault test can tell, as the server saw it,
whether a write committed before or after another daemon took the writer
lock: ``pg_xact_commit_timestamp(xmin)`` of a row. Its binaries are
:func:`~revaer_runtime_pg.embedded.find_binaries`'s, so as root they are ones
the ``postgres`` user can run, as for the embedded server.

Nothing of the store imports this module.
"""

from __future__ import annotations

import atexit
import contextlib
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
from typing import Any

import psycopg
import psycopg.sql

from revaer_core import RuntimeStore, StartedInWith, StoreRole
from revaer_runtime_pg.embedded import Postmaster, find_binaries

SERVER_USER = "postgres"
_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "60",
    "listen_addresses": "'127.0.0.1'",
    "track_commit_timestamp": "on",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` user when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", SERVER_USER, "--", *argv] if os.geteuid() == 0 else argv


class ClusterError(RuntimeError):
    """A private cluster could not be made, started or stopped; the message quotes its log."""


class PrivateCluster(StartedInWith):
    """A PostgreSQL server of the test's own, in a temp dir, on a free 127.0.0.1 port (trust auth).

    ``start``/``stop``/``kill``/``restart`` keep the port, so :attr:`url` stays valid across
    outages. ``close`` stops it and deletes everything; ``with`` starts it and closes it.
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

    # -- internals -----------------------------------------------------------------------

    def _create(self) -> None:
        template = self._template_dir(self.binaries.bindir)
        subprocess.run(["cp", "-a", str(template), str(self.pgdata)], check=True, capture_output=True)  # noqa: S607
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
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
                    user = pwd.getpwnam(SERVER_USER)
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
        settings = {**_SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.socket_dir}'"}
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
            user = pwd.getpwnam(SERVER_USER)
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
    from revaer_runtime_pg.store import PostgresStore  # here, not at the top: the store module is the heavy one

    return RuntimeStore.open(
        PostgresStore(), name="postgres", options=pg_options(url, schema, **more), data_dir=data_dir, role=role
    )


def pg_options(url: str, schema: str, **more: Any) -> dict[str, Any]:
    """The ``[runtime.postgres]`` table of a store on ``url`` in ``schema``."""
    return {"dsn": url, "schema": schema, **more}
