"""Every TorrentStore and JobStore hook over dicts guarded by one lock.

Values are frozen attrs objects, so they are stored and handed out as they
are: no reader can change what another sees.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from revaer_core import (
    Capability,
    ConfigError,
    FsJob,
    JobHistoryEntry,
    JobQuery,
    JobStatus,
    JobTransition,
    Page,
    StoredSource,
    StoreHealth,
    TorrentQuery,
    TorrentStatus,
    apply_transition,
    history_entry,
    hookimpl,
    select_jobs,
    select_torrents,
)


class MemoryStore:
    """A runtime store that lives and dies with its process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._torrents: dict[UUID, TorrentStatus] = {}
        self._resume: dict[UUID, bytes] = {}
        self._sources: dict[UUID, StoredSource] = {}
        self._jobs: dict[UUID, FsJob] = {}
        self._history: dict[UUID, list[JobHistoryEntry]] = {}

    # -- lifecycle ---------------------------------------------------------------

    @hookimpl
    def store_configure(self, options: Mapping[str, Any]) -> None:
        if options:
            raise ConfigError(f"runtime.memory.{sorted(options)[0]}", "unknown setting; the memory store has none")

    @hookimpl
    def store_capabilities(self) -> Iterable[str]:
        return {Capability.RESUME_DATA, Capability.SOURCES}

    @hookimpl
    def store_health(self) -> StoreHealth:
        with self._lock:
            count = len(self._torrents)
        return StoreHealth(ok=True, detail="in memory: nothing survives a restart", facts={"torrents": str(count)})

    # -- torrents ------------------------------------------------------------------

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
        with self._lock:
            self._torrents.update((status.id, status) for status in statuses)

    @hookimpl
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        with self._lock:
            for torrent_id in torrent_ids:
                self._torrents.pop(torrent_id, None)
                self._resume.pop(torrent_id, None)
                self._sources.pop(torrent_id, None)
                self._jobs.pop(torrent_id, None)
                self._history.pop(torrent_id, None)

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        with self._lock:
            if torrent_id in self._torrents:
                self._resume[torrent_id] = bytes(data)

    @hookimpl
    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """Each item through :meth:`save_resume_data`, so a subclass that extends that hook sees them all."""
        for torrent_id, data in items:
            self.save_resume_data(torrent_id, data)

    @hookimpl
    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        with self._lock:
            self._sources.update((s.torrent_id, s) for s in sources if s.torrent_id in self._torrents)

    @hookimpl
    def load_torrents(self) -> Iterable[TorrentStatus]:
        with self._lock:
            return list(self._torrents.values())

    @hookimpl
    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        with self._lock:
            return self._torrents.get(torrent_id)

    @hookimpl
    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        with self._lock:
            statuses = list(self._torrents.values())
        return select_torrents(statuses, query)

    @hookimpl
    def load_resume_data(self) -> Mapping[UUID, bytes]:
        with self._lock:
            return dict(self._resume)

    @hookimpl
    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        with self._lock:
            return dict(self._sources)

    # -- jobs ------------------------------------------------------------------------

    @hookimpl
    def record_job_transition(self, transition: JobTransition) -> FsJob:
        with self._lock:
            job = apply_transition(self._jobs.get(transition.torrent_id), transition)
            history = self._history.setdefault(transition.torrent_id, [])
            history.append(history_entry(job, transition, seq=len(history) + 1))
            self._jobs[job.torrent_id] = job
            return job

    @hookimpl
    def get_job(self, torrent_id: UUID) -> FsJob | None:
        with self._lock:
            return self._jobs.get(torrent_id)

    @hookimpl
    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        with self._lock:
            jobs = list(self._jobs.values())
        return select_jobs(jobs, query)

    @hookimpl
    def count_jobs(self) -> Mapping[JobStatus, int]:
        with self._lock:
            return Counter(job.status for job in self._jobs.values())

    @hookimpl
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        with self._lock:
            return tuple(self._history.get(torrent_id, ()))
