"""The daemon: engine, orchestrator, FsOps, store and API wired together, started and stopped in order.

Start order matters: the catalog is hydrated before any event is taken, the
engine restores its torrents only once the orchestrator listens, and jobs
left pending resume last. Stop order matters too: API first (no new
requests), then the engine hands its last resume data to the writer (which
stores every flush's statuses before its resume data, so no flush is needed
first), then FsOps and the writer drain and the store closes. One deadline
covers it all: each part gets the time left, and a stop that passes it, or
leaves anything unwritten, is not called clean.

Any part reports a fault it cannot get past through :meth:`Daemon.fail` (the
health board's ``fail`` leads there, and so does a thread that dies with an
exception): health turns ``failed``, :meth:`Daemon.wait` returns, and
``revaer run`` stops and exits 3 saying why. A store that fences this
daemon's writes is the one fault it first tries to get past: it asks the
store to take the writer lock back, and stops only when another daemon has it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

import attrs

from revaer_core.bus import EventBus
from revaer_core.control.controller import Controller
from revaer_core.control.token import daemon_token
from revaer_core.control.watch import WatchFolder
from revaer_core.engine import Engine, RestoreRequest, restore_plan
from revaer_core.engine.registry import EngineFactory, open_engine
from revaer_core.errors import HELD_ELSEWHERE, WRITER_LOCK_FACT
from revaer_core.events import Event
from revaer_core.fsops.policy import journal_dir_of
from revaer_core.fsops.service import FsOpsService
from revaer_core.health import WRITER_LOCK, HealthBoard, StoreRole
from revaer_core.jobs import JobTransition
from revaer_core.metrics import Metrics
from revaer_core.orchestrator import Catalog, DrainReport, ReconcileReport, TorrentOrchestrator
from revaer_core.plugins import open_store
from revaer_core.settings import Settings
from revaer_core.status import TorrentStatus
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)


class DaemonObserver(Protocol):
    """Told what the daemon folded and what its store committed, in order: an audit trail, a crash test's log."""

    def on_event(self, event: Event) -> None:
        """Every event, once the orchestrator folded it (on the bus's thread)."""

    def on_written(self, upserted: Sequence[TorrentStatus], removed: Sequence[UUID]) -> None:
        """What one flush committed (on the writer's thread)."""


@attrs.frozen
class ShutdownReport:
    """What a stop could not finish before its deadline, and the fault that stopped the daemon, if one did."""

    unwritten_torrents: tuple[UUID, ...]
    unrecorded_jobs: tuple[JobTransition, ...]
    seconds: float
    failure: str | None = None  #: why the daemon stopped on its own (:meth:`Daemon.fail`)
    started: bool = True  #: ``False`` when the start itself failed
    unsaved_resume: tuple[UUID, ...] = ()  #: torrents whose latest resume data did not reach the store
    deadline_s: float | None = None  #: the shutdown deadline it ran against
    phases: tuple[tuple[str, float], ...] = ()  #: seconds each part of the stop took, in order

    def timings(self) -> str:
        """Where the stop's time went, for the log line: ``API 0.10 s, engine 0.62 s, ...``."""
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.phases)

    @property
    def late(self) -> bool:
        """Whether the stop took longer than its deadline."""
        return self.deadline_s is not None and self.seconds > self.deadline_s

    @property
    def clean(self) -> bool:
        return self.started and self.failure is None and not self.unwritten() and not self.late

    def unwritten(self) -> str:
        """What was left unwritten, in words; empty when nothing was."""
        parts = []
        if self.unwritten_torrents:
            parts.append(f"{len(self.unwritten_torrents)} torrent status(es)")
        if self.unrecorded_jobs:
            parts.append(f"{len(self.unrecorded_jobs)} FsOps job transition(s)")
        if self.unsaved_resume:
            parts.append(f"the resume data of {len(self.unsaved_resume)} torrent(s)")
        return " and ".join(parts) + " not written to the runtime store" if parts else ""

    def summary(self) -> str:
        """One line for the operator: why the daemon stopped and what it left unwritten."""
        left = self.unwritten()
        if self.failure is not None:
            return f"{self.failure}; stopped{f' with {left}' if left else ''}"
        if left:
            return f"stopped with {left}"
        if self.late:
            return f"stopped in {self.seconds:.2f} s, past the shutdown deadline of {self.deadline_s:g} s"
        return "stopped cleanly"


class Daemon:
    """Everything ``revaer run`` runs. Build, :meth:`start`, then :meth:`stop` once."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: str | EngineFactory = "libtorrent",
        serve_api: bool = True,
        store: RuntimeStore | None = None,
        engine_overrides: Mapping[str, Any] | None = None,
        observer: DaemonObserver | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._engine_name = engine if isinstance(engine, str) else engine.name
        self._serve_api = serve_api
        self._given_store = store
        self._engine_overrides = engine_overrides
        self.bus = EventBus(capacity=4096)
        self.health = HealthBoard(publish=self.bus.publish)
        self.metrics = Metrics()
        self.store: RuntimeStore | None = None
        self.orchestrator: TorrentOrchestrator | None = None
        self.fsops: FsOpsService | None = None
        self.engine: Engine | None = None
        self.api: Any = None  #: the ApiServer, when serving
        self.controller: Controller | None = None  #: the control operations the API and the watch folder use
        self.watch: WatchFolder | None = None  #: the ``[engine] watch_dir`` poller, when one is set
        self.reconciled: ReconcileReport | None = None
        self.observer = observer  #: told every folded event and every committed flush; the caller closes it
        self.failure: str | None = None  #: the first fatal fault reported through :meth:`fail`
        self._stopping = threading.Event()  #: set by :meth:`request_stop` and :meth:`fail`; ends :meth:`wait`
        self._started = False
        self._reclaim: threading.Thread | None = None
        self._previous_excepthook: Any = None
        self.health.on_fault = self._on_fault

    # -- faults ----------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """A fault the daemon cannot get past: health ``failed``, and :meth:`wait` returns (the first reason wins)."""
        if self.failure is None:
            self.failure = reason
            log.error("revaer cannot go on: %s", reason)
        self.health.fail("daemon", reason)
        self._stopping.set()

    def request_stop(self) -> None:
        """Ask for a stop (SIGINT, SIGTERM): :meth:`wait` returns."""
        self._stopping.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until a stop is asked for or a fault stops the daemon; ``False`` when ``timeout`` passed first."""
        return self._stopping.wait(timeout)

    def _on_fault(self, component: str, reason: str) -> None:
        """The health board's listener: a lost writer lock is taken back if it can be; anything else stops us."""
        if component == "daemon":
            return
        if component != WRITER_LOCK:
            self.fail(reason)
            return
        log.error("runtime store writes refused: %s; taking the writer lock back", reason)
        if self._reclaim is None or not self._reclaim.is_alive():
            self._reclaim = threading.Thread(target=self._take_lock_back, name="revaer-writer-lock", daemon=True)
            self._reclaim.start()

    def _take_lock_back(self) -> None:
        """Ask the store (its ``store_health``) to take the writer lock back, once a second, until it can or
        another daemon has it; meanwhile the writer keeps what it buffered and writes nothing."""
        while not self._stopping.is_set():
            store = self.store
            if store is None:
                return
            health = store.health()
            if health.ok:
                log.warning("runtime store: writer lock taken back; writing what was buffered")
                self.health.clear(WRITER_LOCK)
                return
            if health.facts.get(WRITER_LOCK_FACT) == HELD_ELSEWHERE:
                self.fail(f"this daemon lost the writer lock, its writes refused since: {health.detail}")
                return
            self._stopping.wait(1.0)

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        """``threading.excepthook`` while the daemon runs: no thread of ours dies silently."""
        name = args.thread.name if args.thread is not None else "a thread"
        log.error("thread %s died", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # type: ignore[arg-type]
        self.fail(f"thread {name} died: {args.exc_type.__name__}: {args.exc_value}")

    # -- start ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the store, hydrate, start the engine, reconcile, resume FsOps, serve the API.

        The cyclic garbage collector is paused meanwhile: the start imports the
        store's and the API's modules and builds the catalog, hundreds of
        thousands of objects that live as long as the daemon, and each time the
        heap grew by a quarter the collector walked all of it again (a third of
        a 2,000-torrent start, measured). Once started, what it built is frozen
        out of the collector's way (a full collection walking it stopped every
        thread for half a second at 10,000 torrents), with the few cycles the
        imports left (about a megabyte): collecting them cost 0.1 s of the start.
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._start()
        finally:
            if self._started:
                gc.freeze()
            if collecting:
                gc.enable()

    def _start(self) -> None:
        started = time.perf_counter()
        self._previous_excepthook, threading.excepthook = threading.excepthook, self._thread_died
        self.store = self._given_store or open_store(self.settings.runtime, StoreRole.DAEMON)
        catalog = Catalog()  # FsOps drops the failed job writes of torrents removed from it
        self.fsops = FsOpsService(
            self.settings.fsops,
            self.store,
            journal_dir=journal_dir_of(self.settings.runtime.data_dir),
            source_roots=self.settings.engine.save_roots,
            publish=self.bus.publish,
            health=self.health,
            on_library_path=self._on_library_path,
            tracked=catalog.__contains__,
        )
        self.orchestrator = TorrentOrchestrator(
            self.bus,
            self.store,
            settings=self.settings.runtime,
            health=self.health,
            metrics=self.metrics,
            on_completed=self.fsops.on_completed,
            on_written=self.observer.on_written if self.observer is not None else None,
            catalog=catalog,
        )
        self.orchestrator.hydrate()
        self.orchestrator.start()
        if self.observer is not None:
            self.bus.subscribe(self.observer.on_event)  # after the orchestrator: told once folded
        self.engine = self._open_engine()
        restored = self.engine.start(self._restore_plan())
        self.reconciled = self.orchestrator.reconcile(restored)
        self.controller = Controller(
            engine=self.engine,
            orchestrator=self.orchestrator,
            settings=self.settings,
            bus=self.bus,
            store=self.store,
            fsops=self.fsops,
        )
        self.fsops.resume_pending()
        if self._serve_api:
            self.api = self._start_api()
        if self.settings.engine.watch_dir is not None:  # last: every add it makes needs all of the above
            self.watch = WatchFolder(
                self.settings.engine.watch_dir, self.controller, self.settings, publish=self.bus.publish
            )
            self.watch.start()
        self._started = True
        log.info(
            "revaer is running: %s store, %s engine, %d torrent(s), started in %.2f s%s",
            self.store.backend or "no",
            self._engine_name,
            len(self.orchestrator.catalog),
            time.perf_counter() - started,
            f", API on {self.api.url}" if self.api is not None else "",
        )

    def _restore_plan(self) -> list[RestoreRequest]:
        """What the engine restores: every hydrated torrent with resume data or a stored source."""
        assert self.store is not None and self.orchestrator is not None
        if not self.store.persistent:
            return []
        return restore_plan(
            self.orchestrator.catalog.snapshot().values(),
            self.store.load_resume_data(),
            self.store.load_torrent_sources(),
            self.settings.engine.download_dir,
        )

    def _on_library_path(self, torrent_id: UUID, library_path: str) -> None:
        if self.controller is not None:
            self.controller.on_library_path(torrent_id, library_path)

    def _open_engine(self) -> Engine:
        assert self.store is not None
        resume_interval_s = self.settings.runtime.flush_interval_ms / 1000  # resume data keeps up with the flushes
        if not isinstance(self._engine, str):
            return self._engine(self.bus.publish, self.store, self.settings.engine, resume_interval_s)
        return open_engine(
            self._engine,
            self.bus.publish,
            self.store,
            self.settings.engine,
            session_overrides=self._engine_overrides,
            resume_interval_s=resume_interval_s,
        )

    def _start_api(self) -> Any:
        """Serve the API; its modules (Litestar, uvicorn) are imported only now, by the daemon's own thread.

        Not on a thread of their own while the store opens and the engine
        restores, as they once were: nearly all of that is computing, and two
        threads importing at once took longer than one after the other (they
        take turns at the interpreter lock, and each waits on modules the other
        is importing), with a larger peak. Measured at 2,000 torrents: the same
        start or sooner, a peak about 3 MiB lower; with no torrents about 0.15 s sooner.
        """
        from revaer_core.api.app import create_app
        from revaer_core.api.server import ApiServer

        assert self.store is not None and self.orchestrator is not None
        api = self.settings.api
        app = create_app(
            self.store,
            bus=self.bus,
            health=self.health,
            metrics=self.metrics,
            catalog=self.orchestrator.catalog,
            token=daemon_token(self.settings),
            read_token=api.read_token,
            metrics_public=api.metrics_public,
            bind_host=api.host,
            controller=self.controller,
            max_upload_bytes=api.max_upload_bytes,
            max_event_streams=api.max_event_streams,
        )
        server = ApiServer(app, host=api.host, port=api.port)
        server.start()
        return server

    # -- stop -----------------------------------------------------------------------

    def stop(self) -> ShutdownReport:
        """Stop everything in order within ``runtime.shutdown_deadline_s``; report what was left."""
        started = time.monotonic()
        deadline = self.settings.runtime.shutdown_deadline_s
        self._stopping.set()
        if WRITER_LOCK in self.health.failed:
            deadline = min(deadline, 2.0)  # fenced: retrying writes that cannot land only delays the exit

        def left() -> float:
            return max(0.0, deadline - (time.monotonic() - started))

        phases: list[tuple[str, float]] = []
        lap = time.monotonic()

        def done(part: str) -> None:
            nonlocal lap
            now = time.monotonic()
            phases.append((part, now - lap))
            lap = now

        if self.watch is not None:  # first: an add in flight finishes while the engine and store are still there
            self.watch.stop(timeout=left())
            done("watch folder")
        if self.api is not None:
            self.api.stop(timeout=left())
            done("API")
        # the engine's last resume data goes to the writer, which stores it after the statuses it holds
        unsaved: Sequence[UUID] = ()
        if self.engine is not None:
            unsaved = self.engine.close(left())
            done("engine")
        unrecorded: Sequence[JobTransition] = ()
        if self.fsops is not None:
            unrecorded = self.fsops.close(left())
            done("FsOps")
        drained = DrainReport(unwritten=())
        if self.orchestrator is not None:
            drained = self.orchestrator.close(left())
            done("last flush")
        if self.store is not None and self._given_store is None:
            self._close_store(self.store, left())
            done("store")
        if self._previous_excepthook is not None:
            threading.excepthook, self._previous_excepthook = self._previous_excepthook, None
        gc.unfreeze()  # a process that runs daemons one after another (a test) collects them again
        report = ShutdownReport(
            unwritten_torrents=drained.unwritten,
            unsaved_resume=tuple(dict.fromkeys([*drained.resume_unwritten, *unsaved])),
            unrecorded_jobs=tuple(unrecorded),
            seconds=time.monotonic() - started,
            failure=self.failure,
            started=self._started,
            deadline_s=deadline,
            phases=tuple(phases),
        )
        if report.clean:
            log.info("revaer stopped cleanly in %.2f s (%s)", report.seconds, report.timings())
        elif not report.started:
            log.info("revaer did not start; what had started stopped in %.2f s", report.seconds)
        elif report.unwritten():
            log.warning("revaer stopped in %.2f s (%s) with %s", report.seconds, report.timings(), report.unwritten())
        elif report.late:
            log.warning("revaer stopped in %.2f s (%s), past the shutdown deadline of %g s", report.seconds,
                        report.timings(), deadline)  # fmt: skip
        return report

    @staticmethod
    def _close_store(store: RuntimeStore, timeout: float) -> None:
        """Close the store, waiting at most ``timeout`` seconds: a hung server must not hold the exit.

        Everything the daemon wrote is committed by now; a close that does not
        return only leaves its connections for the process exit to drop.
        """
        closer = threading.Thread(target=store.close, name="revaer-store-close", daemon=True)
        closer.start()
        closer.join(max(timeout, 0.1))
        if closer.is_alive():
            log.warning("the runtime store did not close within %.1f s; its connections go with the process", timeout)
