"""The TorrentOrchestrator folds engine events into the catalog and hands them to the writer.

Boot order: :meth:`hydrate` from the store, :meth:`start` listening to the bus,
start the engine, then :meth:`reconcile` with what the engine restored. The
event handler never waits on the database (unless durability is ``sync``),
and neither does an engine saving resume data: once started, the
orchestrator routes the store's resume data through its writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from uuid import UUID

import attrs

from revaer_core.backoff import Backoff
from revaer_core.bus import EventBus
from revaer_core.engine import RestoredTorrent
from revaer_core.events import (
    Event,
    ProgressUpdated,
    SelectionReconciled,
    StateChanged,
    TorrentAdded,
    TorrentCompleted,
    TorrentRemoved,
)
from revaer_core.health import HealthBoard
from revaer_core.metrics import Metrics
from revaer_core.orchestrator.catalog import Catalog
from revaer_core.orchestrator.fold import LIFECYCLE, Removed, fold, restored_status, unchanged
from revaer_core.orchestrator.writer import DEFAULT_BACKOFF, DrainReport, StoreWriter
from revaer_core.settings import RuntimeSettings
from revaer_core.sources import StoredSource
from revaer_core.status import TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

#: The message on a torrent the store remembers but the engine did not restore.
NOT_IN_ENGINE = "not restored by the engine at startup (resume data missing or torrent removed outside Revaer)"


class StillRemoving(Exception):
    """The torrent was removed and the engine has not confirmed it yet; an add must wait for that."""


@attrs.frozen
class ReconcileReport:
    """How the catalog and the engine's restored torrents differed."""

    matched: int
    stopped: tuple[UUID, ...]  #: in the store, not in the engine: marked stopped
    added: tuple[UUID, ...]  #: in the engine, not in the store


class TorrentOrchestrator:
    """Keeps the catalog, persists every change, and triggers FsOps on completion."""

    def __init__(
        self,
        bus: EventBus,
        store: RuntimeStore,
        *,
        settings: RuntimeSettings | None = None,
        health: HealthBoard | None = None,
        metrics: Metrics | None = None,
        on_completed: Callable[[TorrentStatus], None] | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        on_written: Callable[[Sequence[TorrentStatus], Sequence[UUID]], None] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        """:param catalog: the catalog to keep, when others need it before the orchestrator exists
        (the daemon hands FsOps its ``__contains__``); a new one by default."""
        settings = settings or RuntimeSettings()
        self._bus = bus
        self._store = store
        self._settings = settings
        self.health = health or HealthBoard(publish=bus.publish)
        self.metrics = metrics or Metrics()
        self.metrics.declare(  # its writer declares its own series
            "revaer_events_handled_total", "counter", "Events the orchestrator folded into the catalog."
        )
        self._on_completed = on_completed  #: the FsOps seam: called off the handler's lock
        self.catalog = catalog if catalog is not None else Catalog()
        self._lock = threading.Lock()  # one event folds at a time: per-torrent order is bus order
        self._unsubscribe: Callable[[], None] | None = None
        self._hydrated: frozenset[UUID] = frozenset()
        self._added_by_engine: set[UUID] = set()  #: torrents the engine announced since start()
        self._state_seen: set[UUID] = set()  #: torrents whose state an event gave since start()
        #: torrents an operator removed whose removal the engine has not confirmed: their late events are dropped
        self._forgotten: set[UUID] = set()
        self._writer: StoreWriter | None = None
        if store.persistent:
            self._writer = StoreWriter(
                store,
                interval=settings.flush_interval_ms / 1000,
                durability=settings.durability,
                health=self.health,
                metrics=self.metrics,
                backoff=backoff,
                on_written=on_written,  # told what each committed flush stored (the daemon's observer)
                current=self.catalog.get,  # so a flush need not hold the statuses it writes
            )

    # -- boot ------------------------------------------------------------------------

    def hydrate(self) -> int:
        """Seed the catalog from the store; returns how many torrents it loaded."""
        started = time.perf_counter()
        statuses = self._store.load_torrents()
        self.catalog._load(statuses)
        self._hydrated = frozenset(s.id for s in statuses)
        if self._store.persistent:
            log.info(
                "hydrated %d torrent(s) from the %s store in %.3f s",
                len(statuses),
                self._store.backend,
                time.perf_counter() - started,
            )
        return len(statuses)

    def start(self) -> None:
        """Listen to the bus and start the writer; engines' resume data goes through it from now on."""
        if self._writer is not None:
            self._writer.start()
            self._store.route_resume_data(self._writer.save_resume_data)
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(self.handle)

    def reconcile(self, restored: Sequence[RestoredTorrent]) -> ReconcileReport:
        """Compare the hydrated catalog with what the engine restored.

        Torrents only the store knows (hydrated, yet neither restored nor added by
        the engine since :meth:`start`) are kept, marked stopped with a message;
        torrents only the engine knows are added (their events add them too).
        Each restored torrent gets the state (and, when complete, the progress)
        the engine restored it with, unless an event said more since
        :meth:`start`: once this returns, the catalog holds every restored
        torrent's state. What the store holds already is not written again.
        """
        restored_ids = {r.torrent_id for r in restored}
        known = self.catalog.snapshot()
        with self._lock:
            in_engine = restored_ids | self._added_by_engine
        stopped = tuple(
            i for i in sorted(self._hydrated) if i in known and i not in in_engine and known[i].failure != NOT_IN_ENGINE
        )
        added = tuple(r.torrent_id for r in restored if r.torrent_id not in self._hydrated)
        now = datetime.now(UTC)
        with self._lock:
            for torrent_id in stopped:
                self._apply(
                    attrs.evolve(
                        known[torrent_id], state=TorrentState.STOPPED, failure=NOT_IN_ENGINE, last_updated=now
                    ),
                    urgent=True,
                )
            for r in restored:
                current = self.catalog.get(r.torrent_id)
                if current is None:
                    current = TorrentStatus(id=r.torrent_id, name=r.name, added_at=now, last_updated=now)
                    self._apply(current, urgent=True)
                if r.torrent_id in self._state_seen:
                    continue  # an event since start() said more than the restore can
                status = restored_status(current, r.state, r.complete, now)
                if status is not current:
                    self._apply(status, urgent=False)
            self._added_by_engine.clear()
            self._state_seen.clear()
        for torrent_id in stopped:
            self._bus.publish(SelectionReconciled(torrent_id=torrent_id, reason=NOT_IN_ENGINE))
        report = ReconcileReport(matched=len(restored_ids & self._hydrated), stopped=stopped, added=added)
        log.info(
            "reconciled catalog with engine: %d matched, %d only in the store (marked stopped), %d only in the engine",
            report.matched,
            len(report.stopped),
            len(report.added),
        )
        return report

    # -- operator changes ------------------------------------------------------------------

    def admit(self, status: TorrentStatus, source: StoredSource | None = None) -> int:
        """Put a torrent an operator adds into the catalog, and its status and source first in line for the store.

        Returns the write's ticket: :meth:`written` says when the store holds it.
        :raises StillRemoving: the same torrent's removal is not finished yet.
        """
        with self._lock:
            if status.id in self._forgotten:
                raise StillRemoving(status.id)
            self.catalog._put(status)
            return self._writer.upsert(status, urgent=True, source=source) if self._writer is not None else 0

    def change(self, torrent_id: UUID, edit: Callable[[TorrentStatus], TorrentStatus]) -> tuple[TorrentStatus, int]:
        """Apply an operator's ``edit`` to the torrent's status now; returns it and its write's ticket.

        :raises KeyError: the torrent is not in the catalog.
        """
        with self._lock:
            status = edit(self.catalog[torrent_id])
            self.catalog._put(status)
            ticket = self._writer.upsert(status, urgent=True) if self._writer is not None else 0
        return status, ticket

    def forget(self, torrent_id: UUID) -> int:
        """Drop a torrent an operator removes; its events are ignored until the engine confirms the removal."""
        with self._lock:
            self.catalog._pop(torrent_id)
            self._forgotten.add(torrent_id)
            return self._writer.remove(torrent_id) if self._writer is not None else 0

    def confirm_gone(self, torrent_id: UUID) -> None:
        """The engine never had the forgotten torrent (it will send no removal): stop waiting for one."""
        with self._lock:
            self._forgotten.discard(torrent_id)

    def written(self, ticket: int, timeout: float) -> bool:
        """Whether the store holds the change of ``ticket`` within ``timeout`` seconds (at once without a store)."""
        return self._writer is None or self._writer.wait_written(ticket, timeout)

    # -- events -----------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Fold one event into the catalog and mark the torrent dirty. Never waits on the store."""
        payload = event.payload
        torrent_id: UUID | None = getattr(payload, "torrent_id", None)
        if torrent_id is None:
            return
        with self._lock:
            if torrent_id in self._forgotten:
                if isinstance(payload, TorrentRemoved):
                    self._forgotten.discard(torrent_id)
                return
            current = self.catalog.get(torrent_id)
            change = fold(current, payload, event.at)
            if change is None:
                return
            self.metrics.inc("revaer_events_handled_total")
            if isinstance(payload, TorrentAdded):
                self._added_by_engine.add(torrent_id)
            elif isinstance(payload, StateChanged):
                self._state_seen.add(torrent_id)
            if isinstance(change, Removed):
                self.catalog._pop(change.torrent_id)
                if self._writer is not None:
                    self._writer.remove(change.torrent_id)
                return
            if isinstance(payload, ProgressUpdated):  # most events: the writer's cheapest call
                if current is not None and change.progress == current.progress and change.rates == current.rates:
                    return  # nothing new (a restored torrent's first report, say): nothing to write
                self.catalog._put(change)
                if self._writer is not None:
                    self._writer.progress(change)
                return
            if not isinstance(payload, TorrentCompleted) and unchanged(change, current):
                return  # nothing new: nothing to write
            self._apply(change, urgent=isinstance(payload, LIFECYCLE))
        if isinstance(payload, TorrentCompleted):
            self._complete(change)

    def _apply(self, status: TorrentStatus, *, urgent: bool) -> None:
        self.catalog._put(status)
        if self._writer is not None:
            self._writer.upsert(status, urgent=urgent)

    def _complete(self, status: TorrentStatus) -> None:
        if self._on_completed is None:
            return
        try:
            self._on_completed(status)
        except Exception:
            log.exception("FsOps hand-off failed for torrent %s", status.id)

    # -- shutdown -----------------------------------------------------------------------

    @property
    def pending_writes(self) -> int:
        """Torrents whose latest status the store does not hold yet."""
        return self._writer.depth if self._writer is not None else 0

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the store holds every change folded so far; ``False`` on timeout."""
        return self._writer is None or self._writer.flush(timeout)

    def close(self, deadline: float | None = None) -> DrainReport:
        """Stop listening and drain the writer within ``deadline`` seconds (the settings' by default)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._writer is None:
            return DrainReport(unwritten=())
        report = self._writer.close(self._settings.shutdown_deadline_s if deadline is None else deadline)
        self._store.route_resume_data(None)
        return report
