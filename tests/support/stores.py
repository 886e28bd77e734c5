"""Stores for tests that are not about the store: the real memory store, and the same behind injected faults.

:class:`FaultyStore` is the one fault-injecting store of the suite. The
storage is a real :class:`MemoryStore`; each fault is a switch a test turns,
so a test says which fault it is about:

- ``writes_fail``: every write raises :class:`StoreUnavailable` (a database refusing writes);
- ``fail_next``: the next ``n`` writes raise, then writes pass again (``failures`` counts them);
- ``lose_acks``: a failing write reaches the storage first, then raises (the commit
  happened, the answer was lost);
- ``reads_fail``: every read raises (``list_torrents`` a bare ``OSError``, as a driver lets one through);
- ``health_fails``: ``store_health`` reports the store failing;
- ``down``: all of the above switches but ``fail_next`` and ``lose_acks`` at once (a stopped database).

Every message carries :data:`SECRET_DSN`, so a test also sees that the
password is redacted wherever the failure is reported.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import pytest

from revaer_core import (
    FsJob,
    JobHistoryEntry,
    JobQuery,
    JobStatus,
    JobTransition,
    Page,
    Progress,
    Rates,
    RuntimeStore,
    StoredSource,
    StoreHealth,
    StoreUnavailable,
    TorrentQuery,
    TorrentStatus,
    hookimpl,
)
from revaer_runtime_memory import MemoryStore

#: A password the tests plant in failure messages; it must never reach output.
SECRET = "hunter2"
SECRET_DSN = f"postgresql://revaer:{SECRET}@db.internal/revaer"


class FaultyStore:
    """A store plugin that delegates every hook to a MemoryStore and fails where a test switches a fault on."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.writes_fail = False
        self.reads_fail = False
        self.health_fails = False
        self.fail_next = 0
        self.lose_acks = False
        self.failures = 0  #: writes failed on purpose so far
        self.calls: list[tuple[str, int]] = []  #: (hook, rows) of every write that reached the storage
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.writes_fail and self.reads_fail and self.health_fails

    @down.setter
    def down(self, value: bool) -> None:
        self.writes_fail = self.reads_fail = self.health_fails = value

    def writes(self, hook: str) -> list[int]:
        """Row counts of the calls to ``hook`` that reached the storage."""
        with self._lock:
            return [rows for name, rows in self.calls if name == hook]

    def _write(self, hook: str, rows: int) -> bool:
        """Fail now (before the storage) or say whether to fail after it; record what reaches it."""
        with self._lock:
            failing = self.writes_fail or self.fail_next > 0
            if failing:
                self.fail_next = max(0, self.fail_next - 1)
                self.failures += 1
                if not self.lose_acks:
                    raise StoreUnavailable(f"{hook}: connection to {SECRET_DSN} refused (injected)")
            self.calls.append((hook, rows))
            return failing

    @staticmethod
    def _ack(hook: str, lost: bool) -> None:
        if lost:
            raise StoreUnavailable(f"{hook}: connection lost after commit (injected)")

    def _read(self) -> None:
        if self.reads_fail:
            raise StoreUnavailable(f"connection to {SECRET_DSN} refused (injected)")

    # -- lifecycle -----------------------------------------------------------------

    @hookimpl
    def store_capabilities(self) -> Iterable[str]:
        return self.inner.store_capabilities()

    @hookimpl
    def store_health(self) -> StoreHealth:
        if self.health_fails:
            return StoreHealth(ok=False, detail=f"cannot connect to {SECRET_DSN}", facts={"dsn": SECRET_DSN})
        return self.inner.store_health()

    # -- writes --------------------------------------------------------------------

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
        lost = self._write("upsert_torrents", len(statuses))
        self.inner.upsert_torrents(statuses)
        self._ack("upsert_torrents", lost)

    @hookimpl
    def update_progress(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        lost = self._write("update_progress", len(statuses))
        held = [s for s in statuses if self.inner.get_torrent(s.id) is not None]
        self.inner.upsert_torrents(held)
        self._ack("update_progress", lost)
        return [s.id for s in statuses if s not in held]

    @hookimpl
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        lost = self._write("remove_torrents", len(torrent_ids))
        self.inner.remove_torrents(torrent_ids)
        self._ack("remove_torrents", lost)

    @hookimpl
    def record_job_transition(self, transition: JobTransition) -> FsJob:
        lost = self._write("record_job_transition", 1)
        job = self.inner.record_job_transition(transition)
        self._ack("record_job_transition", lost)
        return job

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        lost = self._write("save_resume_data", 1)
        self.inner.save_resume_data(torrent_id, data)
        self._ack("save_resume_data", lost)

    @hookimpl
    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        lost = self._write("save_torrent_sources", len(sources))
        self.inner.save_torrent_sources(sources)
        self._ack("save_torrent_sources", lost)

    # -- reads ---------------------------------------------------------------------

    @hookimpl
    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        self._read()
        return self.inner.load_torrent_sources()

    @hookimpl
    def load_torrents(self) -> Iterable[TorrentStatus]:
        self._read()
        return self.inner.load_torrents()

    @hookimpl
    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        self._read()
        return self.inner.get_torrent(torrent_id)

    @hookimpl
    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        if self.reads_fail:
            raise OSError(f"could not connect to server: {SECRET_DSN}")  # what a driver lets through
        return self.inner.list_torrents(query)

    @hookimpl
    def load_resume_data(self) -> Mapping[UUID, bytes]:
        self._read()
        return self.inner.load_resume_data()

    @hookimpl
    def get_job(self, torrent_id: UUID) -> FsJob | None:
        self._read()
        return self.inner.get_job(torrent_id)

    @hookimpl
    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        self._read()
        return self.inner.list_jobs(query)

    @hookimpl
    def count_jobs(self) -> Counter[JobStatus]:
        self._read()
        return Counter(self.inner.count_jobs())

    @hookimpl
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        self._read()
        return self.inner.job_history(torrent_id)


class PreparingStore(FaultyStore):
    """A :class:`FaultyStore` that writes progress in two steps, as the PostgreSQL store does (``prepare_progress``).

    What it encodes is numbers alone; ``writing`` is set while a write runs and
    the write waits for ``proceed``, so a test can act while the store "waits
    on its database".
    """

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.proceed = threading.Event()
        self.proceed.set()

    @hookimpl
    def prepare_progress(self, statuses: Iterable[TorrentStatus]) -> Callable[[], Sequence[UUID]]:
        rows = [
            (s.id, s.progress.downloaded, s.progress.total, s.progress.eta_seconds, s.rates.download_bps,
             s.rates.upload_bps, s.rates.ratio, s.last_updated)
            for s in statuses
        ]  # fmt: skip

        def write() -> Sequence[UUID]:
            self.writing.set()
            try:
                self.proceed.wait()
                lost = self._write("prepare_progress", len(rows))
                missing, moved = [], []
                for torrent_id, downloaded, total, eta, down, up, ratio, at in rows:
                    stored = self.inner.get_torrent(torrent_id)
                    if stored is None:
                        missing.append(torrent_id)
                        continue
                    progress = Progress(downloaded=downloaded, total=total, eta_seconds=eta)
                    rates = Rates(download_bps=down, upload_bps=up, ratio=ratio)
                    moved.append(attrs.evolve(stored, progress=progress, rates=rates, last_updated=at))
                self.inner.upsert_torrents(moved)
                self._ack("prepare_progress", lost)
                return missing
            finally:
                self.writing.clear()

        return write


def open_faulty(tmp_path: Path, plugin: FaultyStore | None = None, **options: Any) -> tuple[RuntimeStore, FaultyStore]:
    """A RuntimeStore over ``plugin`` (a fresh FaultyStore by default; backend name ``faulty``), and the plugin."""
    plugin = plugin or FaultyStore()
    return RuntimeStore.open(plugin, name="faulty", options=options, data_dir=tmp_path), plugin


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[tuple[RuntimeStore, FaultyStore]]:
    """A store whose faults the test switches on and off, and its plugin."""
    store, plugin = open_faulty(tmp_path)
    yield store, plugin
    store.close()


@pytest.fixture
def preparing(tmp_path: Path) -> Iterator[tuple[RuntimeStore, PreparingStore]]:
    """A :class:`PreparingStore`: faults as :func:`faulty`'s, progress written in two steps."""
    plugin = PreparingStore()
    store, _ = open_faulty(tmp_path, plugin)
    yield store, plugin
    store.close()


@pytest.fixture
def memory_store(tmp_path: Path) -> Iterator[RuntimeStore]:
    """A real store (the memory plugin) that outlives the engines and services of one test, as a database would."""
    store = RuntimeStore.open(MemoryStore(), name="memory", data_dir=tmp_path)
    yield store
    store.close()
