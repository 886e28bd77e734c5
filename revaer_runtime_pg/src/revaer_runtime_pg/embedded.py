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
That user must then be able to run the binaries too, and a venv under a
private home (``/root``, mode 700) is out of its reach: the binaries are then
another installation of the same version it can reach, or else a copy of
pgserver's tree that root keeps in :data:`CACHE_ROOT` (see :func:`server_user_copy`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import psycopg.conninfo

from revaer_core import StoreUnavailable

log = logging.getLogger(__name__)

CLUSTER_DIR = "postgres"
SERVER_USER = "postgres"  #: who owns the cluster when Revaer runs as root
PORT = 5432  #: only names the socket file: the server opens no TCP port
#: Where root keeps copies of pgserver's binaries for :data:`SERVER_USER`: shared by every venv on the
#: machine (one copy per pgserver build), and not emptied at boot as ``/tmp`` may be. Sticky and
#: open to all, so a copy is trusted only once checked (see :func:`server_user_copy`).
CACHE_ROOT = Path("/var/tmp")  # noqa: S108 - each use checks the owner and mode of what it finds
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


def find_binaries(major: str | None = None, *, cache_root: Path | None = None) -> Binaries:
    """Server binaries the server's user can run, of version ``major`` when given.

    The best candidate decides the version of a new cluster, whoever runs it. As root
    the server runs as :data:`SERVER_USER`, who may not reach that candidate (a venv in
    a private home): then the first candidate of the same version it can reach, else a
    copy of pgserver's tree in ``cache_root`` (default :data:`CACHE_ROOT`), one line in
    the log saying which.

    :raises StoreUnavailable: when none are installed (naming what to install), or none
        the server's user could run.
    """
    wanted = major
    seen: list[str] = []
    matching: list[Binaries] = []
    for bindir in candidate_bindirs():
        version = _major(bindir)
        if version is None:
            continue
        if major is None:
            major = version
        if version == major:
            matching.append(Binaries(bindir=bindir, major=version))
            if not _as_root():
                break  # the server runs as us: the best one will do, no need to ask the others their version
        else:
            seen.append(f"{version} in {bindir}")
    if matching:
        return matching[0] if not _as_root() else _for_server_user(matching, cache_root or CACHE_ROOT)
    if wanted is not None:
        raise StoreUnavailable(
            f"the embedded PostgreSQL cluster was made by PostgreSQL {wanted}, and no binaries of that version are "
            f"installed (found: {', '.join(seen) or 'none'}): install them, or set runtime.postgres.dsn"
        )
    raise StoreUnavailable(
        "no PostgreSQL server binaries for embedded mode: pip install 'revaer-runtime-pg[embedded]', "
        "install PostgreSQL, or set runtime.postgres.dsn / REVAER_DATABASE_URL"
    )


_said: set[str] = set()


def _say_once(message: str) -> None:
    """Log ``message`` at info the first time this process decides it (every server command asks again)."""
    if message not in _said:
        _said.add(message)
        log.info("%s", message)


def _for_server_user(matching: list[Binaries], cache_root: Path) -> Binaries:
    """Of ``matching`` (one version, best first), binaries :data:`SERVER_USER` can run; a cached copy if need be."""
    _server_user()
    best = matching[0]
    for binaries in matching:
        if server_user_can_run(binaries.bindir):
            if binaries is not best:
                _say_once(
                    f"embedded PostgreSQL: running {binaries} (the {SERVER_USER!r} user cannot read {best.bindir})"
                )
            return binaries
    for binaries in matching:
        package = pgserver_package(binaries.bindir)
        if package is not None:
            copy = server_user_copy(package, binaries.major, cache_root)
            _say_once(
                f"embedded PostgreSQL: running pgserver's binaries from {copy} "
                f"(the {SERVER_USER!r} user cannot read {package})"
            )
            return attrs.evolve(binaries, bindir=copy / _PGSERVER_BINDIR)
    raise StoreUnavailable(
        f"embedded PostgreSQL runs as user {SERVER_USER!r} (root may not), who cannot run {best}: make it readable "
        "by that user, install the machine's PostgreSQL, run Revaer as another user, or set runtime.postgres.dsn"
    )


def server_user_can_run(bindir: Path) -> bool:
    """Whether :data:`SERVER_USER` can execute the server binaries in ``bindir`` (every parent traversable)."""
    checks: list[str] = []
    for name in ("initdb", "pg_ctl", "postgres"):
        checks += [*(["-a"] if checks else []), "-x", str(bindir / name)]
    return _server_user_passes(checks)


# -- a copy of pgserver's binaries for the server user ---------------------------------------

_PGSERVER_BINDIR = Path("pgserver/pginstall/bin")  #: where a copy keeps the binaries, as the wheel does


def pgserver_package(bindir: Path) -> Path | None:
    """The ``pgserver`` package directory whose ``pginstall/bin`` is ``bindir``; ``None`` for other binaries."""
    package = bindir.parent.parent
    if bindir.name == "bin" and bindir.parent.name == "pginstall" and (package / "__init__.py").is_file():
        return package
    return None


def _pgserver_trees(package: Path) -> dict[str, Path]:
    """What a copy holds, by its path in the copy: the install tree, and the shared libraries its
    binaries load through ``$ORIGIN/../../../pgserver.libs`` (the wheel's auditwheel layout), so
    both keep their places relative to each other."""
    trees = {"pgserver/pginstall": package / "pginstall", "pgserver.libs": package.parent / "pgserver.libs"}
    return {rel: path for rel, path in trees.items() if path.is_dir()}


_copies: dict[tuple[Path, Path], Path] = {}  #: (pgserver package, cache root) -> its checked copy


def server_user_copy(package: Path, major: str, cache_root: Path = CACHE_ROOT) -> Path:
    """A copy of the ``pgserver`` package's binaries that :data:`SERVER_USER` can read; the directory holding it.

    The copy is ``cache_root/revaer-pgserver-<major>-<hash of the tree>``, so every venv holding
    the same pgserver build shares one. It is made once, atomically (copied under a temporary
    name, then renamed), with directories 0755 and files 0644 or 0755 whatever the umask. Root
    itself runs binaries found there (``pg_ctl --version``), so a copy is used only when every
    entry in it is ours and writable by nobody else, and it still matches the source entry for
    entry; a copy of ours that does not (damaged, loosened) is replaced, one of someone else's is
    refused.

    :raises StoreUnavailable: when the cache cannot be trusted or written.
    """
    known = _copies.get((package, cache_root))
    if known is not None and (known / _PGSERVER_BINDIR).is_dir():
        return known  # checked by this process already: only root could have changed it since
    sources = _pgserver_trees(package)
    expected = _listing(sources)
    digest = hashlib.sha256(repr(expected).encode()).hexdigest()[:16]
    target = cache_root / f"revaer-pgserver-{major}-{digest}"
    try:
        _check_cache_root(cache_root)
        if _usable_copy(target, expected, list(sources)):
            _copies[package, cache_root] = target
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_root))
        try:
            for rel, source in sources.items():
                _copy_tree(source, scratch / rel)
            for dirpath, _, _ in os.walk(scratch):
                os.chmod(dirpath, 0o755)  # noqa: S103 - whatever the umask, the server's user must pass through
            os.rename(scratch, target)
        except OSError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # another process renamed its copy into place first: use that one
        if not _usable_copy(target, expected, list(sources)):
            raise StoreUnavailable(f"embedded PostgreSQL: the copy of pgserver's binaries in {target} is incomplete")
    except OSError as exc:
        raise StoreUnavailable(
            f"embedded PostgreSQL: cannot copy pgserver's binaries to {cache_root} for user {SERVER_USER!r}: {exc}"
        ) from None
    _copies[package, cache_root] = target
    return target


def _listing(trees: Mapping[str, Path]) -> list[tuple[str, str, int]]:
    """Every entry under ``trees`` as (path in the copy, kind, size): what a complete copy must match."""
    entries: list[tuple[str, str, int]] = []
    for rel, root in sorted(trees.items()):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            here = Path(rel) / Path(dirpath).relative_to(root)
            entries.append((str(here), "d", 0))
            for name in sorted(filenames):
                info = os.lstat(os.path.join(dirpath, name))
                kind = "l" if stat.S_ISLNK(info.st_mode) else "x" if info.st_mode & 0o111 else "f"
                entries.append((str(here / name), kind, info.st_size))
    return entries


def _usable_copy(target: Path, expected: list[tuple[str, str, int]], trees: list[str]) -> bool:
    """Whether ``target`` is a complete copy that only we can change; a copy of ours that is not is removed.

    :raises StoreUnavailable: when ``target`` is not a directory of ours.
    """
    try:
        top = os.lstat(target)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(top.st_mode) or top.st_uid != os.geteuid():
        raise StoreUnavailable(
            f"embedded PostgreSQL will not run binaries from {target}: it is not a directory of ours (owner uid "
            f"{top.st_uid}); remove it"
        )
    problem = _loose_entry(target)
    if problem is None and _listing({rel: target / rel for rel in trees}) == expected:
        return True
    log.warning("embedded PostgreSQL: %s: %s; copying pgserver's binaries again", target, problem or "incomplete")
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
    os.rename(target, aside / "copy")
    shutil.rmtree(aside, ignore_errors=True)
    return False


def _loose_entry(root: Path) -> str | None:
    """The first entry under ``root`` that is someone else's or writable by others, said in a few words."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            info = os.lstat(name)
            if info.st_uid != os.geteuid():
                return f"{name} belongs to uid {info.st_uid}"
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o022:
                return f"{name} is writable by others"
    return None


def _check_cache_root(cache_root: Path) -> None:
    """``cache_root`` must be a directory nobody else can swap our copy out of (``/var/tmp`` is sticky)."""
    info = os.stat(cache_root)
    open_to_others = bool(info.st_mode & 0o022) and not info.st_mode & stat.S_ISVTX
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, os.geteuid()) or open_to_others:
        raise StoreUnavailable(
            f"embedded PostgreSQL will not keep binaries in {cache_root}: others could replace them there"
        )


def _copy_tree(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` (symlinks as symlinks), files readable by all and writable by us only."""
    shutil.copytree(source, destination, symlinks=True, copy_function=shutil.copyfile)
    for dirpath, _, filenames in os.walk(destination):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                executable = os.stat(os.path.join(source, os.path.relpath(path, destination))).st_mode & 0o111
                os.chmod(path, 0o755 if executable else 0o644)


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


def _server_user() -> pwd.struct_passwd:
    """The account the server runs as when we are root.

    :raises StoreUnavailable: when the machine has none.
    """
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise StoreUnavailable(
            f"embedded PostgreSQL cannot run as root and there is no {SERVER_USER!r} user to run it: create "
            "one, run Revaer as another user, or set runtime.postgres.dsn"
        ) from None


def _server_user_passes(test_args: list[str]) -> bool:
    """Whether ``test TEST_ARGS`` succeeds as the server's user: the kernel says what that user can reach."""
    test = shutil.which("test") or "/usr/bin/test"
    try:
        probe = subprocess.run(_as_server_user([test, *test_args]), capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


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
        user = _server_user()
        for path in (self.pgdata, socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        if not _server_user_passes(["-w", str(self.pgdata)]):
            raise StoreUnavailable(
                f"embedded PostgreSQL runs as user {SERVER_USER!r} (root may not), who cannot reach {self.pgdata}: "
                "make its parent directories traversable (chmod o+x), use another runtime.data_dir, "
                "or set runtime.postgres.dsn"
            )

    def _pg_ctl(self, *args: str) -> None:
        binaries = self._binaries()
        self._run([str(binaries.bindir / "pg_ctl"), "-D", str(self.pgdata), *args], f"pg_ctl {args[0]}")
