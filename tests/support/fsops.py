"""Fixtures and helpers for the FsOps tests: real directories, a real memory store, injected faults only."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import pytest

from revaer_core import (
    RuntimeStore,
    TorrentStatus,
)
from revaer_core.events import EventPayload, FsOpsProgress
from revaer_core.fsops import Backoff, FsOpsOutcome, FsOpsService
from revaer_core.fsops.paths import META_DIR
from revaer_core.fsops.policy import journal_dir_of
from revaer_core.health import HealthBoard
from revaer_core.settings import FsOpsSettings, build
from revaer_core.status import FileEntry, TorrentState

#: Retries fast enough for a test, still exponential.
FAST = Backoff(initial=0.005, maximum=0.05)


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so no handler in FsOps catches it."""


@attrs.define
class Layout:
    """A download dir and a library root under one temp dir, plus a sentinel dir nothing may touch."""

    root: Path
    downloads: Path
    library: Path
    outside: Path

    @property
    def journal(self) -> Path:
        """FsOps' job journal, where the ``services`` fixture keeps it: ``<data dir>/fsops``."""
        return journal_dir_of(self.root / "data")

    def settings(self, **overrides: Any) -> FsOpsSettings:
        """``[fsops]`` settings as the loader builds them from TOML values (paths may be given as Paths)."""
        table: dict[str, Any] = {"enabled": True, "library_root": self.library, **overrides}
        for key, value in table.items():
            if isinstance(value, Path):
                table[key] = str(value)
            elif isinstance(value, list | tuple):
                table[key] = [str(v) if isinstance(v, Path) else v for v in value]
        return build(FsOpsSettings, table, "fsops")

    def payload(self, name: str, files: Mapping[str, bytes]) -> Path:
        """A multi-file torrent's folder ``downloads/name`` holding ``files``."""
        base = self.downloads / name
        for rel, data in files.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        base.mkdir(parents=True, exist_ok=True)
        return base

    def single(self, name: str, data: bytes) -> Path:
        """A single-file torrent ``downloads/name``."""
        path = self.downloads / name
        path.write_bytes(data)
        return path


def make_layout(root: Path) -> Layout:
    """Fresh ``downloads``, ``library`` and ``outside`` folders under ``root``; ``outside`` holds a file to keep."""
    parts = {k: root / k for k in ("downloads", "library", "outside")}
    for path in parts.values():
        path.mkdir()
    (parts["outside"] / "keep.txt").write_bytes(b"untouched")
    return Layout(root=root, **parts)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path)


def status(
    torrent_id: UUID, name: str | None, download_dir: Path | None, files: Sequence[str] | None = None
) -> TorrentStatus:
    """A completed torrent's status, as the orchestrator would hand it over."""
    now = datetime.now(UTC)
    entries = None if files is None else [FileEntry(index=i, path=p, size=0) for i, p in enumerate(files)]
    return TorrentStatus(
        id=torrent_id,
        added_at=now,
        last_updated=now,
        name=name,
        state=TorrentState.COMPLETED,
        files=entries,
        download_dir=None if download_dir is None else str(download_dir),
        completed_at=now,
    )


def tree(path: Path) -> dict[str, bytes]:
    """Every regular file under ``path`` (FsOps' own ``.revaer`` folder left out) and its bytes."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d != META_DIR)
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():  # never read a FIFO (it would block)
                found[str(full.relative_to(path))] = full.read_bytes()
            else:
                found[str(full.relative_to(path))] = b"<not a regular file>"
    return found


def zip_bytes(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: Sequence[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    """A tar archive of regular files ``(name, data)`` and prepared special members (links, devices)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Events:
    """A ``publish`` callable that keeps every payload and can crash before a chosen step."""

    def __init__(self, crash_before: str | None = None) -> None:
        self.payloads: list[EventPayload] = []
        self.crash_before = crash_before
        self._lock = threading.Lock()

    def __call__(self, payload: EventPayload) -> None:
        with self._lock:
            self.payloads.append(payload)
        if isinstance(payload, FsOpsProgress) and payload.step == self.crash_before:
            raise SimulatedCrash(f"process died before step {payload.step}")

    def steps(self) -> list[str]:
        return [p.step for p in self.payloads if isinstance(p, FsOpsProgress)]

    def kinds(self) -> list[str]:
        return [p.kind for p in self.payloads]


@attrs.define
class Services:
    """Builds FsOpsServices and closes every one at teardown."""

    journal_dir: Path
    source_roots: tuple[Path, ...]
    built: list[FsOpsService] = attrs.field(factory=list)

    def __call__(
        self,
        settings: FsOpsSettings,
        store: RuntimeStore | None = None,
        *,
        publish: Callable[[EventPayload], object] | None = None,
        health: HealthBoard | None = None,
        on_library_path: Callable[[UUID, str], object] | None = None,
        tracked: Callable[[UUID], bool] | None = None,
    ) -> FsOpsService:
        service = FsOpsService(
            settings,
            store or RuntimeStore.none(),
            journal_dir=self.journal_dir,
            source_roots=self.source_roots,
            publish=publish,
            health=health,
            on_library_path=on_library_path,
            backoff=FAST,
            tracked=tracked,
        )
        self.built.append(service)
        return service


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """FsOps services sharing one journal (as restarts of one daemon do), the layout's downloads as source root."""
    made = Services(journal_dir=journal_dir_of(tmp_path / "data"), source_roots=(tmp_path / "downloads",))
    yield made
    for service in made.built:
        service.close(deadline=2.0)


def run(service: FsOpsService, torrent: TorrentStatus, timeout: float = 10.0) -> FsOpsOutcome:
    """Submit and wait: the result of one job."""
    return service.submit(torrent).result(timeout=timeout)


def new_id() -> UUID:
    return uuid.uuid4()


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory on a different filesystem from ``tmp_path`` (``/dev/shm`` on Linux)."""
    here = os.stat(tmp_path).st_dev
    for base in (Path("/dev/shm"), Path("/run/user") / str(os.getuid()), Path("/var/tmp")):  # noqa: S108
        if base.is_dir() and os.access(base, os.W_OK) and os.stat(base).st_dev != here:
            folder = base / f"revaer-fsops-{uuid.uuid4().hex}"
            folder.mkdir()
            yield folder
            shutil.rmtree(folder, ignore_errors=True)
            return
    pytest.skip("no writable second filesystem (tried /dev/shm, /run/user/<uid>, /var/tmp)")


def unprivileged(body: Callable[[], str]) -> str:
    """``body()`` run without root's powers: in a forked child as ``nobody`` when we are root.

    Permission tests need a process the kernel says no to; root is never told no.
    The child runs only ``body`` (no threads of its own) and sends its text back.
    """
    if os.geteuid() != 0:
        return body()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            text = body()
        except BaseException as exc:
            text, code = f"child raised {exc!r}", 1
        with os.fdopen(write_end, "w") as out:
            out.write(text)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as result:
        text = result.read()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, text
    return text


def shared_tmp(prefix: str = "revaer-test-") -> Path:
    """A temp dir any user can enter (pytest's own live under a root-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A :func:`shared_tmp` dir, removed after the test: for a server or child that runs as another user."""
    folder = shared_tmp()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
