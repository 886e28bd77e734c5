"""Resume data through the write-behind writer: batched, after the statuses, kept on failure, off the engine thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import pytest

from revaer_core import RuntimeStore, StoreUnavailable, TorrentStatus, hookimpl
from revaer_core.backoff import Backoff
from revaer_core.bus import EventBus
from revaer_core.contract import samples
from revaer_core.health import RUNTIME_STORE, HealthBoard
from revaer_core.orchestrator import TorrentOrchestrator
from revaer_core.orchestrator.writer import StoreWriter
from revaer_core.settings import RuntimeSettings
from revaer_core.testing.simulated import SimulatedEngine, SimulatedEngineFactory, SimulationScript
from revaer_core.testing.waiting import wait_for
from revaer_runtime_memory import MemoryStore

FAST = Backoff(initial=0.01, maximum=0.02)


class RecordingStore(MemoryStore):
    """The real memory store, recording each write call (hook, rows, thread) and failing while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int, str]] = []
        self.down = False
        self._record_lock = threading.Lock()

    def _record(self, hook: str, rows: int) -> None:
        with self._record_lock:
            if self.down:
                raise StoreUnavailable(f"{hook}: PostgreSQL at db:5432 is down (injected)")
            self.calls.append((hook, rows, threading.current_thread().name))

    def hooks(self) -> list[str]:
        with self._record_lock:
            return [hook for hook, _, _ in self.calls]

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
        self._record("upsert_torrents", len(statuses))
        super().upsert_torrents(statuses)

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        self._record("save_resume_data", 1)
        super().save_resume_data(torrent_id, data)

    @hookimpl
    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        self._record("save_resume_data_batch", len(items))
        for torrent_id, data in items:
            MemoryStore.save_resume_data(self, torrent_id, data)


@pytest.fixture
def recording(tmp_path: Path) -> tuple[RecordingStore, RuntimeStore]:
    plugin = RecordingStore()
    return plugin, RuntimeStore.open(plugin, name="memory", data_dir=tmp_path)


def test_resume_data_is_written_in_one_batch_after_the_statuses_of_its_flush(
    recording: tuple[RecordingStore, RuntimeStore],
) -> None:
    plugin, store = recording
    writer = StoreWriter(store, interval=0.05)
    statuses = [samples.status(n) for n in range(300)]
    for status in statuses:
        writer.upsert(status)
    writer.save_resume_data([(s.id, b"old") for s in statuses])
    writer.save_resume_data([(s.id, f"new {n}".encode()) for n, s in enumerate(statuses)])
    writer.save_resume_data([(uuid.uuid4(), b"of a torrent nobody stored")])
    writer.start()
    assert writer.flush(10)
    assert plugin.hooks() == ["upsert_torrents", "save_resume_data_batch"], "statuses first, then one batch"
    assert [rows for hook, rows, _ in plugin.calls] == [300, 301]
    assert store.load_resume_data() == {s.id: f"new {n}".encode() for n, s in enumerate(statuses)}
    assert writer.close(5).complete


def test_failed_resume_data_is_kept_and_retried_and_newer_data_wins(
    recording: tuple[RecordingStore, RuntimeStore],
) -> None:
    plugin, store = recording
    health = HealthBoard()
    writer = StoreWriter(store, interval=0.02, health=health, backoff=FAST)
    status = samples.status(1)
    store.upsert_torrents([status])
    plugin.down = True
    writer.start()
    writer.save_resume_data([(status.id, b"first")])
    wait_for(lambda: RUNTIME_STORE in health.degraded, "the failed write to degrade health")
    writer.save_resume_data([(status.id, b"second")])
    assert store.load_resume_data() == {}
    plugin.down = False
    assert writer.flush(10)
    assert store.load_resume_data() == {status.id: b"second"}
    wait_for(lambda: RUNTIME_STORE not in health.degraded, "health to recover")
    assert writer.close(5).complete


def test_the_listener_hears_of_committed_statuses_before_their_resume_data_is_written(
    recording: tuple[RecordingStore, RuntimeStore],
) -> None:
    """``on_written`` comes once the statuses are stored, not a resume write later, and even when that write fails."""
    plugin, store = recording
    heard: list[tuple[list[UUID], list[str]]] = []

    def on_written(upserted: Sequence[TorrentStatus], removed: Sequence[UUID]) -> None:
        plugin.down = plugin.down or not heard  # the resume data after the first statuses fails
        heard.append(([s.id for s in upserted], plugin.hooks()))

    writer = StoreWriter(store, interval=0.02, backoff=FAST, on_written=on_written)
    status = samples.status(1)
    writer.upsert(status)
    writer.save_resume_data([(status.id, b"resume")])
    writer.start()
    wait_for(lambda: bool(heard), "the listener to hear of the stored status")
    assert heard == [([status.id], ["upsert_torrents"])], "heard of once stored, before any resume write"
    assert store.get_torrent(status.id) == status
    assert store.load_resume_data() == {}
    plugin.down = False
    assert writer.flush(10)
    assert store.load_resume_data() == {status.id: b"resume"}
    assert writer.close(5).complete


def test_resume_data_of_a_removed_torrent_is_dropped(recording: tuple[RecordingStore, RuntimeStore]) -> None:
    _, store = recording
    writer = StoreWriter(store, interval=0.02)
    kept, removed = samples.status(1), samples.status(2)
    store.upsert_torrents([kept, removed])
    writer.save_resume_data([(kept.id, b"kept"), (removed.id, b"before the removal")])
    writer.remove(removed.id)
    writer.save_resume_data([(removed.id, b"after the removal")])
    writer.start()
    assert writer.flush(10)
    assert store.load_resume_data() == {kept.id: b"kept"}
    assert writer.close(5).complete


def test_a_shutdown_drain_reports_resume_data_it_could_not_write(
    recording: tuple[RecordingStore, RuntimeStore],
) -> None:
    plugin, store = recording
    writer = StoreWriter(store, interval=0.02, backoff=FAST)
    status = samples.status(1)
    store.upsert_torrents([status])
    plugin.down = True
    writer.save_resume_data([(status.id, b"never")])
    report = writer.close(0.2)
    assert not report.complete
    assert report.resume_unwritten == (status.id,) and report.unwritten == ()


def test_no_engine_thread_calls_the_store_once_an_orchestrator_routes_resume_data(
    recording: tuple[RecordingStore, RuntimeStore],
) -> None:
    plugin, store = recording
    bus = EventBus()
    orchestrator = TorrentOrchestrator(bus, store, settings=RuntimeSettings(flush_interval_ms=20))
    orchestrator.start()
    engine = SimulatedEngine(
        bus.publish, store, SimulationScript(torrents=40, steps=1_000, resume_every_steps=2), tick_interval_s=0.005
    )
    engine.start()
    wait_for(lambda: len(store.load_resume_data()) == 40, "resume data of every torrent")
    engine.close()
    assert orchestrator.close(5).complete
    threads = {thread for _, _, thread in plugin.calls}
    assert threads == {"revaer-store-writer"}, f"the store was called from {threads}"
    assert "save_resume_data" not in plugin.hooks(), "resume data goes in batches"
    assert max(rows for hook, rows, _ in plugin.calls if hook == "save_resume_data_batch") == 40


def test_a_store_without_the_batch_hook_gets_one_call_per_item(tmp_path: Path) -> None:
    class SingleOnly:
        def __init__(self) -> None:
            self.inner = MemoryStore()

        @hookimpl
        def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
            self.inner.upsert_torrents(statuses)

        @hookimpl
        def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
            self.inner.save_resume_data(torrent_id, data)

    plugin = SingleOnly()
    store = RuntimeStore.open(plugin, name="single", data_dir=tmp_path)
    statuses = [samples.status(n) for n in range(3)]
    store.upsert_torrents(statuses)
    store.save_resume_data_batch([(s.id, s.name.encode() if s.name else b"") for s in statuses])
    assert plugin.inner.load_resume_data() == {s.id: (s.name or "").encode() for s in statuses}


class ResumeRefusingStore(RecordingStore):
    """Statuses land; resume data is refused: a stop then leaves only resume data unwritten."""

    @hookimpl
    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        raise StoreUnavailable("resume data refused (injected)")


def test_a_stop_that_leaves_resume_data_unwritten_is_not_called_clean(tmp_path: Path) -> None:
    from revaer_core.daemon import Daemon
    from revaer_core.settings import EngineSettings, Settings

    settings = Settings(
        runtime=RuntimeSettings(backend="memory", data_dir=tmp_path / "data", shutdown_deadline_s=1),
        engine=EngineSettings(download_dir=tmp_path / "downloads"),
    )
    plugin = ResumeRefusingStore()
    store = RuntimeStore.open(plugin, name="memory", data_dir=tmp_path / "data")
    script = SimulationScript(torrents=3, steps=400, save_path=tmp_path / "downloads")
    daemon = Daemon(settings, engine=SimulatedEngineFactory(script), serve_api=False, store=store)
    daemon.start()
    assert daemon.orchestrator is not None
    wait_for(lambda: len(store.load_torrents()) == 3, "the statuses to be stored")
    report = daemon.stop()
    assert report.unwritten_torrents == () and report.unsaved_resume, report
    assert not report.clean
    assert report.summary() == "stopped with the resume data of 3 torrent(s) not written to the runtime store"


def test_a_stop_past_its_deadline_is_not_called_clean() -> None:
    from revaer_core.daemon import ShutdownReport

    on_time = ShutdownReport(unwritten_torrents=(), unrecorded_jobs=(), seconds=9.9, deadline_s=10.0)
    late = ShutdownReport(unwritten_torrents=(), unrecorded_jobs=(), seconds=12.5, deadline_s=10.0)
    assert on_time.clean and on_time.summary() == "stopped cleanly"
    assert late.late and not late.clean
    assert late.summary() == "stopped in 12.50 s, past the shutdown deadline of 10 s"


def test_a_stop_logs_how_long_each_part_took_in_stop_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from revaer_core.daemon import Daemon
    from revaer_core.settings import EngineSettings, Settings

    settings = Settings(
        runtime=RuntimeSettings(backend="memory", data_dir=tmp_path / "data"),
        engine=EngineSettings(download_dir=tmp_path / "downloads"),
    )
    store = RuntimeStore.open(RecordingStore(), name="memory", data_dir=tmp_path / "data")
    script = SimulationScript(torrents=3, steps=400, save_path=tmp_path / "downloads")
    daemon = Daemon(settings, engine=SimulatedEngineFactory(script), serve_api=False, store=store)
    daemon.start()
    wait_for(lambda: len(store.load_torrents()) == 3, "the statuses to be stored")
    with caplog.at_level("INFO", logger="revaer_core.daemon"):
        report = daemon.stop()
    assert report.clean, report
    assert [part for part, _ in report.phases] == ["engine", "FsOps", "last flush"]  # no API, a store of the caller's
    assert sum(seconds for _, seconds in report.phases) <= report.seconds
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("revaer stopped cleanly")]
    assert said == [f"revaer stopped cleanly in {report.seconds:.2f} s ({report.timings()})"], said
    assert report.timings().startswith("engine ") and ", FsOps " in report.timings()
