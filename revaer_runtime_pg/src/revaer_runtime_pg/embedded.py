"""Embedded mode: a private PostgreSQL under ``<data_dir>/postgres`` for zero-setup persistence.

Binaries come from the ``pgserver`` wheel (``pip install revaer-runtime-pg[embedded]``)
or from the machine's own PostgreSQL (``/usr/lib/postgresql/*/bin``, ``PATH``);
an existing cluster is always started by binaries of its own major version.
The server listens on a Unix socket only (no TCP port), in a directory only
its owner can enter. A server left running by an earlier process (one killed,
say) is found through ``postmaster.pid`` and reused; a server this process
started is stopped when the store closes.

PostgreSQL refuses to run as root: as root, the cluster belongs to the
``postgres`` system user and every server command runs through ``runuser``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import psycopg.conninfo

from revaer_core import StoreUnavailable

log = logging.getLogger(__name__)

CLUSTER_DIR = "postgres"
SERVER_USER = "postgres"  #: who owns the cluster when Revaer runs as root
PORT = 5432  #: only names the socket file: the server opens no TCP port
_SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes; leave room for "/.s.PGSQL.5432"
_TIMEOUT_S = 60


@attrs.frozen
class Binaries:
    """A directory holding ``initdb``, ``pg_ctl`` and ``postgres`` of one major version."""

    bindir: Path
    major: str

    def __str__(self) -> str:
        return f"PostgreSQL {self.major} in {self.bindir}"


def _major(bindir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else None


def candidate_bindirs() -> list[Path]:
    """Where server binaries may be, best first: the pgserver wheel, the system's, ``PATH``."""
    found: list[Path] = []
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")

    def version_of(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.name))

    found.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_of, reverse=True))
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return [d for d in dict.fromkeys(found) if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]


def find_binaries(major: str | None = None) -> Binaries:
    """Server binaries, of version ``major`` when given.

    :raises StoreUnavailable: when none are installed (naming what to install).
    """
    seen: list[str] = []
    for bindir in candidate_bindirs():
        version = _major(bindir)
        if version is None:
            continue
        if major is None or version == major:
            return Binaries(bindir=bindir, major=version)
        seen.append(f"{version} in {bindir}")
    if major is not None:
        raise StoreUnavailable(
            f"the embedded PostgreSQL cluster was made by PostgreSQL {major}, and no binaries of that version are "
            f"installed (found: {', '.join(seen) or 'none'}): install them, or set runtime.postgres.dsn"
        )
    raise StoreUnavailable(
        "no PostgreSQL server binaries for embedded mode: pip install 'revaer-runtime-pg[embedded]', "
        "install PostgreSQL, or set runtime.postgres.dsn / REVAER_DATABASE_URL"
    )


@attrs.frozen
class Postmaster:
    """What ``postmaster.pid`` says about a running server."""

    pid: int
    port: int
    socket_dir: Path | None
    ready: bool

    @classmethod
    def read(cls, pgdata: Path) -> Postmaster | None:
        """The server running on ``pgdata``, or ``None`` if none is (a stale pid file counts as none)."""
        try:
            lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 8:
            return None  # being written: not ready yet
        pid = int(lines[0])
        if not _alive(pid):
            return None
        socket_dir = lines[4].split(",")[0].strip()
        return cls(
            pid=pid,
            port=int(lines[3]),
            socket_dir=Path(socket_dir) if socket_dir else None,
            ready=lines[7].strip() == "ready",
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _as_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as :data:`SERVER_USER` through ``runuser`` when we are root, else as is."""
    if not _as_root():
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        raise StoreUnavailable(
            f"embedded PostgreSQL must run as user {SERVER_USER!r} when Revaer runs as root, and runuser is "
            "missing: install util-linux, run Revaer as another user, or set runtime.postgres.dsn"
        )
    return [runuser, "-u", SERVER_USER, "--", *argv]


class EmbeddedServer:
    """A private PostgreSQL cluster in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / CLUSTER_DIR
        self.log_file = self.pgdata / "server.log"
        self._started_here = False

    # -- public --------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server unless it runs already; return its DSN.

        :raises StoreUnavailable: with one line saying what went wrong and where the log is.
        """
        with self._file_lock():
            running = Postmaster.read(self.pgdata)
            if running is None or not running.ready:
                if not (self.pgdata / "PG_VERSION").is_file():
                    self._initdb()
                self._pg_ctl("start", "-w", "-t", str(_TIMEOUT_S), "-l", str(self.log_file))
                self._started_here = True
                running = Postmaster.read(self.pgdata)
                if running is None:
                    raise StoreUnavailable(f"embedded PostgreSQL did not come up; see {self.log_file}")
                log.info("embedded PostgreSQL started in %s (pid %d)", self.pgdata, running.pid)
            else:
                log.info("embedded PostgreSQL already running in %s (pid %d): reusing it", self.pgdata, running.pid)
        return self._dsn(running)

    def stop(self) -> None:
        """Stop the server if this object started it; one left by another process keeps running."""
        if not self._started_here:
            return
        self._started_here = False
        with self._file_lock():
            if Postmaster.read(self.pgdata) is not None:
                self._pg_ctl("stop", "-w", "-m", "fast", "-t", str(_TIMEOUT_S))

    # -- internals -----------------------------------------------------------------------

    def _dsn(self, running: Postmaster) -> str:
        host = str(running.socket_dir or self._socket_dir())
        return psycopg.conninfo.make_conninfo(host=host, port=str(running.port), user="postgres", dbname="postgres")

    def _socket_dir(self) -> Path:
        if len(str(self.pgdata)) <= _SOCKET_PATH_MAX:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"revaer-pg-{digest}"

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise start and stop between processes sharing this data dir (the daemon and a CLI, say)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "postgres.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _binaries(self) -> Binaries:
        version_file = self.pgdata / "PG_VERSION"
        major = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else None
        return find_binaries(major)

    def _run(self, argv: list[str], what: str) -> None:
        argv = _as_server_user(argv)
        try:
            subprocess.run(argv, capture_output=True, text=True, check=True, timeout=_TIMEOUT_S + 30, cwd="/")
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            last = detail[-1] if detail else f"exit status {exc.returncode}"
            raise StoreUnavailable(f"embedded PostgreSQL: {what} failed: {last} (log: {self.log_file})") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreUnavailable(f"embedded PostgreSQL: {what} failed: {exc}") from None

    def _initdb(self) -> None:
        binaries = find_binaries()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        socket_dir = self._socket_dir()
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _as_root():
            self._hand_to_server_user(socket_dir)
        log.info("creating the embedded PostgreSQL cluster in %s with %s", self.pgdata, binaries)
        self._run(
            [
                str(binaries.bindir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",  # the socket directory is private: only its owner can connect
                "--encoding=UTF8",
                "--locale=C",
            ],
            "initdb",
        )
        quoted = str(socket_dir).replace("'", "''")
        settings = f"listen_addresses = ''\nunix_socket_directories = '{quoted}'\nport = {PORT}\n"
        with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\n# revaer-runtime-pg embedded mode: Unix socket only\n{settings}")

    def _hand_to_server_user(self, socket_dir: Path) -> None:
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise StoreUnavailable(
                f"embedded PostgreSQL cannot run as root and there is no {SERVER_USER!r} user to run it: create "
                "one, run Revaer as another user, or set runtime.postgres.dsn"
            ) from None
        for path in (self.pgdata, socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        test = shutil.which("test") or "/usr/bin/test"
        probe = subprocess.run(_as_server_user([test, "-w", str(self.pgdata)]), capture_output=True, check=False)
        if probe.returncode != 0:
            raise StoreUnavailable(
                f"embedded PostgreSQL runs as user {SERVER_USER!r} (root may not), who cannot reach {self.pgdata}: "
                "make its parent directories traversable (chmod o+x), use another runtime.data_dir, "
                "or set runtime.postgres.dsn"
            )

    def _pg_ctl(self, *args: str) -> None:
        binaries = self._binaries()
        self._run([str(binaries.bindir / "pg_ctl"), "-D", str(self.pgdata), *args], f"pg_ctl {args[0]}")
