"""A store plugin that fails on demand, in front of the real memory store.

For tests about what callers do when a store fails: the storage itself is the
real MemoryStore; only the failure is injected.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from revaer_core import (
    FsJob,
    JobHistoryEntry,
    JobQuery,
    JobTransition,
    Page,
    RuntimeStore,
    StoredSource,
    StoreUnavailable,
    TorrentQuery,
    TorrentStatus,
    hookimpl,
)
from revaer_runtime_memory import MemoryStore


class FlakyStore:
    """Delegates every hook to a MemoryStore; writes raise while ``down`` or ``fail_next`` > 0."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False
        self.fail_next = 0
        self.calls: list[tuple[str, int]] = []  #: (hook, rows) of every write that reached the storage
        self._lock = threading.Lock()

    def _gate(self, hook: str, rows: int) -> None:
        with self._lock:
            if self.down or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                raise StoreUnavailable(
                    f"{hook}: connection to postgresql://revaer:hunter2@db/revaer refused (injected)"
                )
            self.calls.append((hook, rows))

    def writes(self, hook: str) -> list[int]:
        """Row counts of the successful calls to ``hook``."""
        with self._lock:
            return [rows for name, rows in self.calls if name == hook]

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
        self._gate("upsert_torrents", len(statuses))
        self.inner.upsert_torrents(statuses)

    @hookimpl
    def update_progress(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        self._gate("update_progress", len(statuses))
        held = [s for s in statuses if self.inner.get_torrent(s.id) is not None]
        self.inner.upsert_torrents(held)
        return [s.id for s in statuses if s not in held]

    @hookimpl
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        self._gate("remove_torrents", len(torrent_ids))
        self.inner.remove_torrents(torrent_ids)

    @hookimpl
    def record_job_transition(self, transition: JobTransition) -> FsJob:
        self._gate("record_job_transition", 1)
        return self.inner.record_job_transition(transition)

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        self._gate("save_resume_data", 1)
        self.inner.save_resume_data(torrent_id, data)

    @hookimpl
    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        self._gate("save_torrent_sources", len(sources))
        self.inner.save_torrent_sources(sources)

    @hookimpl
    def store_capabilities(self) -> Iterable[str]:
        return self.inner.store_capabilities()

    @hookimpl
    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        return self.inner.load_torrent_sources()

    @hookimpl
    def load_torrents(self) -> Iterable[TorrentStatus]:
        return self.inner.load_torrents()

    @hookimpl
    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        return self.inner.get_torrent(torrent_id)

    @hookimpl
    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        return self.inner.list_torrents(query)

    @hookimpl
    def load_resume_data(self) -> Mapping[UUID, bytes]:
        return self.inner.load_resume_data()

    @hookimpl
    def get_job(self, torrent_id: UUID) -> FsJob | None:
        return self.inner.get_job(torrent_id)

    @hookimpl
    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        return self.inner.list_jobs(query)

    @hookimpl
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        return self.inner.job_history(torrent_id)


def open_flaky(tmp_path: Path, **options: Any) -> tuple[RuntimeStore, FlakyStore]:
    """A RuntimeStore over a fresh FlakyStore, and the plugin to steer it."""
    plugin = FlakyStore()
    return RuntimeStore.open(plugin, name="flaky", options=options, data_dir=tmp_path), plugin
