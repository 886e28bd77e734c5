"""The runtime store facade: the only way the rest of Revaer reaches a store.

With no backend selected the plugin manager holds no store plugin, so every
hook call finds no implementation: writes do nothing and reads answer "nothing
persisted". That is the whole of the "no store" behaviour; no call site checks
whether a store exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pluggy

from revaer_core.health import Capability, StoreHealth, StoreRole
from revaer_core.hookspecs import NAMESPACES, PROJECT
from revaer_core.jobs import FsJob, JobEvent, JobHistoryEntry, JobStatus, JobTransition
from revaer_core.query import MAX_PAGE_SIZE, JobQuery, Page, TorrentQuery, walk
from revaer_core.sources import StoredSource
from revaer_core.status import TorrentStatus

#: Where :meth:`RuntimeStore.submit_resume_data` sends ``(torrent id, resume data)`` pairs when routed.
ResumeSink = Callable[[Sequence[tuple[UUID, bytes]]], None]

NO_STORE_DETAIL = "no runtime store selected: state lives in memory and is lost on restart"


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with every runtime hook spec, and no plugin yet."""
    pm = pluggy.PluginManager(PROJECT)
    for namespace in NAMESPACES:
        pm.add_hookspecs(namespace)
    return pm


def _now() -> datetime:
    return datetime.now(UTC)


class RuntimeStore:
    """Typed access to the selected store plugin, or to none.

    Build one with :func:`revaer_core.plugins.open_store` (from settings) or
    :meth:`open` (from a plugin object, as tests and the conformance suite do).
    """

    def __init__(self, pm: pluggy.PluginManager, backend: str | None) -> None:
        self._pm = pm
        self._hook: Any = pm.hook
        self.backend = backend  #: the selected backend's name; ``None`` when persistence is off
        self._closed = False
        self._resume_sink: ResumeSink | None = None

    @classmethod
    def none(cls) -> RuntimeStore:
        """The store of a runtime with persistence off."""
        return cls(new_plugin_manager(), None)

    @classmethod
    def open(
        cls,
        plugin: object,
        *,
        name: str,
        options: Mapping[str, Any] | None = None,
        data_dir: Path,
        role: StoreRole = StoreRole.DAEMON,
    ) -> RuntimeStore:
        """Register ``plugin`` as the store and configure it."""
        pm = new_plugin_manager()
        pm.register(plugin, name=name)
        pm.check_pending()  # a misspelt hook name fails here, naming it
        store = cls(pm, name)
        store._hook.store_configure(options=dict(options or {}), data_dir=data_dir, role=role)
        return store

    @property
    def persistent(self) -> bool:
        """Whether writes go anywhere."""
        return self.backend is not None

    @property
    def plugin(self) -> object | None:
        """The registered store plugin object, for plugin-specific commands."""
        return None if self.backend is None else self._pm.get_plugin(self.backend)

    # -- lifecycle -------------------------------------------------------------

    def capabilities(self) -> frozenset[Capability]:
        declared = self._hook.store_capabilities() or ()
        return frozenset(Capability(c) for c in declared if c in Capability.__members__.values())

    def health(self) -> StoreHealth:
        if self.backend is None:
            return StoreHealth(ok=True, detail=NO_STORE_DETAIL)
        health: StoreHealth | None = self._hook.store_health()
        return health or StoreHealth(ok=True, detail=f"{self.backend} store does not report health")

    def close(self) -> None:
        """Close the backend; later calls do nothing."""
        if not self._closed:
            self._closed = True
            self._hook.store_close()

    # -- torrents --------------------------------------------------------------

    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        """Persist ``statuses``; returns ids that were stored sanitised or not at all."""
        if not statuses:
            return ()
        return self._hook.upsert_torrents(statuses=statuses) or ()

    def update_progress(self, statuses: Sequence[TorrentStatus]) -> None:
        """Persist statuses whose only change since their last upsert is progress (and rates).

        Uses the backend's ``prepare_progress`` or ``update_progress`` where it
        has one, and upserts whole the statuses it did not find (or all of
        them, without either hook).
        """
        if statuses:
            self.prepare_progress(statuses, {s.id: s for s in statuses}.get)()

    def prepare_progress(
        self, statuses: Iterable[TorrentStatus], current: Callable[[UUID], TorrentStatus | None]
    ) -> Callable[[], None]:
        """:meth:`update_progress` in two steps: the statuses are read now, the write made when the result is called.

        With the backend's ``prepare_progress`` they are encoded at once and
        nothing keeps them for the write; a torrent the backend then reports
        not stored is upserted whole as ``current`` finds it (not at all when
        it finds none: the torrent is gone). Without that hook the statuses
        are kept for the write, which goes as it went before the hook existed.
        """
        hook = self._hook
        if not hook.prepare_progress.get_hookimpls():
            kept = list(statuses)
            return lambda: self._update_kept(kept)
        store: Callable[[], Sequence[UUID]] = hook.prepare_progress(statuses=statuses)

        def write() -> None:
            missing = store()
            if missing:
                self.upsert_torrents([s for s in map(current, missing) if s is not None])

        return write

    def _update_kept(self, statuses: Sequence[TorrentStatus]) -> None:
        """The backend's ``update_progress``, then an upsert of what it did not find (of all, without the hook)."""
        if not statuses:
            return
        missing: Sequence[UUID] | None = self._hook.update_progress(statuses=statuses)
        if missing is None:
            self.upsert_torrents(statuses)
        elif missing:
            wanted = set(missing)
            self.upsert_torrents([s for s in statuses if s.id in wanted])

    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        if torrent_ids:
            self._hook.remove_torrents(torrent_ids=torrent_ids)

    def load_torrents(self) -> list[TorrentStatus]:
        return list(self._hook.load_torrents() or ())

    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        status: TorrentStatus | None = self._hook.get_torrent(torrent_id=torrent_id)
        return status

    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        page: Page[TorrentStatus] | None = self._hook.list_torrents(query=query)
        return page or Page(items=())

    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        """Write one torrent's resume data now, on the caller's thread."""
        self._hook.save_resume_data(torrent_id=torrent_id, data=data)

    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """Write many torrents' resume data now: one batch hook call, or one single call per item without it."""
        if not items:
            return
        if self._hook.save_resume_data_batch.get_hookimpls():
            self._hook.save_resume_data_batch(items=items)
            return
        for torrent_id, data in items:
            self._hook.save_resume_data(torrent_id=torrent_id, data=data)

    def route_resume_data(self, sink: ResumeSink | None) -> None:
        """Send what engines :meth:`submit_resume_data` to ``sink`` (the orchestrator's writer) from now on.

        ``None`` goes back to writing on the caller's thread, as an engine
        used without an orchestrator (a test, a seeder) wants.
        """
        self._resume_sink = sink

    def submit_resume_data(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """How an engine hands over resume data: to the write-behind writer when one is routed, else written now.

        With a writer it never waits on the database, so the engine's thread
        can call it; the writer stores the latest blob per torrent after the
        torrent's status.
        """
        if not items or self.backend is None:
            return
        sink = self._resume_sink
        if sink is not None:
            sink(items)
        else:
            self.save_resume_data_batch(items)

    def load_resume_data(self) -> Mapping[UUID, bytes]:
        return self._hook.load_resume_data() or {}

    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        if sources:
            self._hook.save_torrent_sources(sources=sources)

    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        return self._hook.load_torrent_sources() or {}

    # -- FsOps jobs --------------------------------------------------------------

    def record_job_transition(self, transition: JobTransition) -> FsJob | None:
        """Apply ``transition``; ``None`` when nothing is persisted."""
        job: FsJob | None = self._hook.record_job_transition(transition=transition)
        return job

    def retry_job(self, torrent_id: UUID, *, at: datetime | None = None) -> FsJob | None:
        """Set a failed job back to pending, for FsOps to run it again."""
        return self.record_job_transition(JobTransition(torrent_id=torrent_id, event=JobEvent.RETRY, at=at or _now()))

    def get_job(self, torrent_id: UUID) -> FsJob | None:
        job: FsJob | None = self._hook.get_job(torrent_id=torrent_id)
        return job

    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        page: Page[FsJob] | None = self._hook.list_jobs(query=query)
        return page or Page(items=())

    def count_jobs(self) -> dict[JobStatus, int]:
        """Jobs in each status, every status present (zero when none).

        The backend's ``count_jobs`` where it has one; else every page of
        ``list_jobs``, counted here.
        """
        counts = dict.fromkeys(JobStatus, 0)
        counted: Mapping[JobStatus, int] | None = self._hook.count_jobs()
        if counted is None:
            for job in walk(self.list_jobs, JobQuery(limit=MAX_PAGE_SIZE)):
                counts[job.status] += 1
        else:
            counts.update((JobStatus(status), count) for status, count in counted.items())
        return counts

    def job_history(self, torrent_id: UUID) -> list[JobHistoryEntry]:
        return list(self._hook.job_history(torrent_id=torrent_id) or ())
