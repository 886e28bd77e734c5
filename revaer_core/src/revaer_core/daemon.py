"""The daemon: engine, orchestrator, FsOps, store and API wired together, started and stopped in order.

Start order matters: the catalog is hydrated before any event is taken, the
engine restores its torrents only once the orchestrator listens, and jobs
left pending resume last. Stop order matters too: API first (no new
requests), then the writer is flushed so the store holds every torrent the
engine will save resume data for, then the engine, FsOps and the writer
drain, each within the shutdown deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs

from revaer_core.bus import EventBus
from revaer_core.control.controller import Controller
from revaer_core.control.token import daemon_token
from revaer_core.control.watch import WatchFolder
from revaer_core.engine import Engine, RestoreRequest, restore_plan
from revaer_core.engine.registry import open_engine
from revaer_core.engine.simulated import SimulationScript
from revaer_core.eventlog import EventLog
from revaer_core.fsops.policy import journal_dir_of
from revaer_core.fsops.service import FsOpsService
from revaer_core.health import HealthBoard, StoreRole
from revaer_core.jobs import JobTransition
from revaer_core.metrics import Metrics
from revaer_core.orchestrator import ReconcileReport, TorrentOrchestrator
from revaer_core.plugins import open_store
from revaer_core.settings import Settings
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)


@attrs.frozen
class ShutdownReport:
    """What a stop could not finish before its deadline."""

    unwritten_torrents: tuple[UUID, ...]
    unrecorded_jobs: tuple[JobTransition, ...]
    seconds: float

    @property
    def clean(self) -> bool:
        return not self.unwritten_torrents and not self.unrecorded_jobs


class Daemon:
    """Everything ``revaer run`` runs. Build, :meth:`start`, then :meth:`stop` once."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: str = "libtorrent",
        script: SimulationScript | None = None,
        serve_api: bool = True,
        store: RuntimeStore | None = None,
        engine_overrides: Mapping[str, Any] | None = None,
        event_log: Path | None = None,
    ) -> None:
        self.settings = settings
        self._engine_name = engine
        self._script = script
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
        #: every event and committed flush as JSON lines, for crash tests to check the store against
        self.event_log = EventLog(event_log) if event_log is not None else None

    # -- start ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the store, hydrate, start the engine, reconcile, resume FsOps, serve the API."""
        started = time.perf_counter()
        self.store = self._given_store or open_store(self.settings.runtime, StoreRole.DAEMON)
        self.fsops = FsOpsService(
            self.settings.fsops,
            self.store,
            journal_dir=journal_dir_of(self.settings.runtime.data_dir),
            source_roots=self.settings.engine.save_roots,
            publish=self.bus.publish,
            health=self.health,
            on_library_path=self._on_library_path,
        )
        self.orchestrator = TorrentOrchestrator(
            self.bus,
            self.store,
            settings=self.settings.runtime,
            health=self.health,
            metrics=self.metrics,
            on_completed=self.fsops.on_completed,
            on_written=self.event_log.on_written if self.event_log is not None else None,
        )
        self.fsops.recorder.tracked = self.orchestrator.catalog.__contains__  # removed torrents' jobs are dropped
        self.orchestrator.hydrate()
        self.orchestrator.start()
        if self.event_log is not None:
            self.bus.subscribe(self.event_log.on_event)  # after the orchestrator: logged once folded
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
        return open_engine(
            self._engine_name,
            self.bus.publish,
            self.store,
            self.settings.engine,
            simulated_tick_s=0.05,
            script=self._script,
            session_overrides=self._engine_overrides,
        )

    def _start_api(self) -> Any:
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

        def left() -> float:
            return max(0.1, deadline - (time.monotonic() - started))

        if self.watch is not None:  # first: an add in flight finishes while the engine and store are still there
            self.watch.stop(timeout=left())
        if self.api is not None:
            self.api.stop(timeout=left())
        if self.orchestrator is not None:
            self.orchestrator.flush(left() / 2)  # the store must hold a torrent before its resume data
        if self.engine is not None:
            self.engine.close()
        unrecorded: Sequence[JobTransition] = self.fsops.close(left()) if self.fsops is not None else ()
        unwritten = self.orchestrator.close(left()).unwritten if self.orchestrator is not None else ()
        if self.store is not None and self._given_store is None:
            self.store.close()
        if self.event_log is not None:
            self.event_log.close()
        report = ShutdownReport(
            unwritten_torrents=tuple(unwritten),
            unrecorded_jobs=tuple(unrecorded),
            seconds=time.monotonic() - started,
        )
        if report.clean:
            log.info("revaer stopped cleanly in %.2f s", report.seconds)
        else:
            log.error(
                "revaer stopped with %d torrent status(es) and %d job transition(s) not written",
                len(report.unwritten_torrents),
                len(report.unrecorded_jobs),
            )
        return report
