"""The TorrentOrchestrator over the memory store: fold, persist, coalesce, survive store faults."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from revaer_core import RuntimeStore, TorrentState, TorrentStatus, events
from revaer_core.bus import EventBus
from revaer_core.engine import RestoredTorrent
from revaer_core.health import RUNTIME_STORE, HealthBoard
from revaer_core.orchestrator import Backoff, StoreWriter, TorrentOrchestrator
from revaer_core.orchestrator.orchestrator import NOT_IN_ENGINE
from revaer_core.orchestrator.writer import DEFAULT_BACKOFF
from revaer_core.settings import Durability, RuntimeSettings
from revaer_core.status import FileEntry, Progress
from revaer_core.testing.jobs import job_started
from revaer_core.testing.waiting import wait_for
from revaer_runtime_memory import MemoryStore
from tests.support.stores import FaultyStore

FAST = Backoff(initial=0.01, maximum=0.05)


def tid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n + 1)


def settings(**changes: object) -> RuntimeSettings:
    values: dict[str, object] = {"flush_interval_ms": 20, "shutdown_deadline_s": 2.0}
    values.update(changes)
    return RuntimeSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def bus() -> EventBus:
    return EventBus(capacity=100_000)


@pytest.fixture
def running(bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]) -> Iterator[TorrentOrchestrator]:
    orchestrator = TorrentOrchestrator(bus, faulty[0], settings=settings(), backoff=FAST)
    orchestrator.hydrate()
    orchestrator.start()
    yield orchestrator
    orchestrator.close()


def start_orchestrator(
    bus: EventBus,
    store: RuntimeStore,
    *,
    backoff: Backoff = DEFAULT_BACKOFF,
    on_completed: Callable[[TorrentStatus], None] | None = None,
    **changes: object,
) -> TorrentOrchestrator:
    """A started orchestrator on ``store`` with the test :func:`settings`, ``changes`` applied."""
    orchestrator = TorrentOrchestrator(
        bus, store, settings=settings(**changes), backoff=backoff, on_completed=on_completed
    )
    orchestrator.start()
    return orchestrator


def lifecycle(bus: EventBus, n: int) -> None:
    """A torrent's whole life up to completion, as an engine reports it."""
    bus.publish(events.TorrentAdded(torrent_id=tid(n), name=f"t{n}", download_dir="/dl"))
    bus.publish(events.FilesDiscovered(torrent_id=tid(n), files=(FileEntry(index=0, path=f"t{n}/a", size=100),)))
    bus.publish(events.StateChanged(torrent_id=tid(n), state=TorrentState.DOWNLOADING))
    for done in (10, 50, 100):
        bus.publish(
            events.ProgressUpdated(torrent_id=tid(n), downloaded=done, total=100, download_bps=10, upload_bps=1)
        )
    bus.publish(events.TorrentCompleted(torrent_id=tid(n)))


def store_matches_catalog(store: RuntimeStore, orchestrator: TorrentOrchestrator) -> bool:
    return {s.id: s for s in store.load_torrents()} == orchestrator.catalog.snapshot()


def test_events_fold_into_the_catalog(bus: EventBus, running: TorrentOrchestrator) -> None:
    lifecycle(bus, 1)
    status = running.catalog[tid(1)]
    assert (status.name, status.download_dir, status.state) == ("t1", "/dl", TorrentState.COMPLETED)
    assert (status.progress.downloaded, status.progress.total, status.progress.eta_seconds) == (100, 100, 0)
    assert status.files is not None and status.files[0].path == "t1/a"
    assert status.completed_at is not None and status.rates.download_bps == 10
    bus.publish(events.StateChanged(torrent_id=tid(1), state=TorrentState.SEEDING))
    assert running.catalog[tid(1)].state is TorrentState.COMPLETED, "seeding after completion stays completed"
    bus.publish(events.StateChanged(torrent_id=tid(1), state=TorrentState.FAILED, failure="disk gone"))
    assert running.catalog[tid(1)].failure == "disk gone"
    bus.publish(events.TorrentRemoved(torrent_id=tid(1)))
    assert tid(1) not in running.catalog


def test_rates_and_eta_are_derived_when_the_engine_gives_none(bus: EventBus, running: TorrentOrchestrator) -> None:
    bus.publish(events.TorrentAdded(torrent_id=tid(1), name="x"))
    first = running.catalog[tid(1)].last_updated
    running.handle(
        events.Event(id=10_001, at=first, payload=events.ProgressUpdated(torrent_id=tid(1), downloaded=0, total=1000))
    )
    later = first + timedelta(seconds=2)
    running.handle(
        events.Event(id=10_002, at=later, payload=events.ProgressUpdated(torrent_id=tid(1), downloaded=200, total=1000))
    )
    status = running.catalog[tid(1)]
    assert status.rates.download_bps == 100
    assert status.progress.eta_seconds == 8


def test_a_progress_event_keeps_the_parts_it_does_not_change(bus: EventBus, running: TorrentOrchestrator) -> None:
    """Unchanged rates (or progress) stay the very objects they were: an event makes no copy of them to collect."""
    bus.publish(events.TorrentAdded(torrent_id=tid(1), name="x"))
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=100, total=1000, download_bps=50, upload_bps=5))
    before = running.catalog[tid(1)]
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=200, total=1000, download_bps=50))
    after = running.catalog[tid(1)]
    assert after.rates is before.rates and after.rates.upload_bps == 5
    assert after.progress == Progress(downloaded=200, total=1000, eta_seconds=16)
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=200, total=1000, download_bps=80, ratio=0.5))
    latest = running.catalog[tid(1)]
    assert latest.progress == Progress(downloaded=200, total=1000, eta_seconds=10)
    assert (latest.rates.download_bps, latest.rates.upload_bps, latest.rates.ratio) == (80, 5, 0.5)
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=200, total=1000, download_bps=80, upload_bps=9))
    assert running.catalog[tid(1)].progress is latest.progress and running.catalog[tid(1)].rates.upload_bps == 9


def test_every_change_reaches_the_store_and_a_restart_hydrates_it(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, _ = faulty
    first = start_orchestrator(bus, store, backoff=FAST)
    for n in range(50):
        lifecycle(bus, n)
    bus.publish(events.TorrentRemoved(torrent_id=tid(7)))
    assert first.close().complete
    before = first.catalog.snapshot()
    assert store_matches_catalog(store, first) and tid(7) not in before

    second = TorrentOrchestrator(EventBus(), store, settings=settings())
    assert second.hydrate() == 49
    assert second.catalog.snapshot() == before


def test_progress_coalesces_between_flushes(bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    orchestrator = start_orchestrator(bus, store, flush_interval_ms=200)
    bus.publish(events.TorrentAdded(torrent_id=tid(1), name="one"))
    wait_for(lambda: store.get_torrent(tid(1)) is not None)
    for done in range(1, 1001):
        bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=done, total=1000))
    orchestrator.close()
    assert len(plugin.writes("upsert_torrents")) <= 4, "a thousand progress events should be a few writes"
    stored = store.get_torrent(tid(1))
    assert stored is not None and stored.progress.downloaded == 1000


def test_lifecycle_changes_wake_the_writer_at_once(bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, _ = faulty
    orchestrator = start_orchestrator(bus, store, flush_interval_ms=60_000)
    started = time.monotonic()
    bus.publish(events.TorrentAdded(torrent_id=tid(1), name="now"))
    wait_for(lambda: store.get_torrent(tid(1)) is not None, timeout=5)
    assert time.monotonic() - started < 5
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=5, total=10))
    time.sleep(0.2)
    stored = store.get_torrent(tid(1))
    assert stored is not None and stored.progress.downloaded == 0, "progress alone waits for the interval"
    orchestrator.close()


def test_store_outage_degrades_health_keeps_everything_and_recovers(
    bus: EventBus,
    running: TorrentOrchestrator,
    faulty: tuple[RuntimeStore, FaultyStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, plugin = faulty
    health_events: list[frozenset[str]] = []
    bus.subscribe(
        lambda e: health_events.append(e.payload.degraded) if isinstance(e.payload, events.HealthChanged) else None
    )
    plugin.writes_fail = True
    with caplog.at_level(logging.WARNING):
        for n in range(20):
            lifecycle(bus, n)
        wait_for(lambda: RUNTIME_STORE in running.health.degraded)
        # the warning names torrents of the failed batch (which come first depends on when the flush ran);
        # the writer may log it just after health turned degraded
        named = {str(tid(n)) for n in range(20)}
        wait_for(
            lambda: any(
                r.levelno == logging.WARNING and any(i in r.getMessage() for i in named) for r in caplog.records
            ),
            "the store's warning",
        )
    assert all("hunter2" not in r.getMessage() for r in caplog.records), "a DSN password reached the log"
    assert store.load_torrents() == []
    plugin.writes_fail = False
    wait_for(lambda: store_matches_catalog(store, running) and running.health.ok)
    assert health_events[:2] == [frozenset({RUNTIME_STORE}), frozenset()]
    assert running.metrics.value("revaer_store_errors_total") >= 1


def test_a_removal_during_an_outage_is_applied_afterwards(
    bus: EventBus, running: TorrentOrchestrator, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    for n in range(3):
        lifecycle(bus, n)
    wait_for(lambda: len(store.load_torrents()) == 3)
    job_started(store, tid(1), "/dl/t1")
    plugin.writes_fail = True
    bus.publish(events.TorrentRemoved(torrent_id=tid(1)))
    bus.publish(events.ProgressUpdated(torrent_id=tid(2), downloaded=1, total=100))
    wait_for(lambda: not running.health.ok)
    plugin.writes_fail = False
    wait_for(lambda: store_matches_catalog(store, running))
    assert store.get_torrent(tid(1)) is None and store.get_job(tid(1)) is None
    time.sleep(0.1)
    assert store.get_torrent(tid(1)) is None, "the removed torrent came back"


def test_remove_then_readd_in_one_flush_drops_the_old_jobs(faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    old = TorrentStatus(id=tid(1), name="old", added_at=_now(), last_updated=_now())
    store.upsert_torrents([old])
    job_started(store, tid(1), "/dl/t1")
    writer = StoreWriter(store)  # not started: everything below lands in the one drain of close()
    writer.upsert(old)
    writer.remove(tid(1))
    writer.upsert(attrs.evolve(old, name="again"))
    assert writer.close().complete
    stored = store.get_torrent(tid(1))
    assert stored is not None and stored.name == "again"
    assert store.get_job(tid(1)) is None, "the old incarnation's job survived"
    assert plugin.writes("remove_torrents") == [1]


def test_a_failed_delete_still_precedes_a_newer_write(faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    old = TorrentStatus(id=tid(1), name="old", added_at=_now(), last_updated=_now())
    store.upsert_torrents([old])
    job_started(store, tid(1), "/dl/t1")
    health = HealthBoard()
    writer = StoreWriter(store, backoff=FAST, health=health)
    plugin.writes_fail = True
    writer.remove(tid(1))
    writer.start()
    wait_for(lambda: not health.ok)  # the delete has failed at least once
    writer.upsert(attrs.evolve(old, name="again"))
    plugin.writes_fail = False
    assert writer.close().complete
    assert store.get_job(tid(1)) is None and store.get_torrent(tid(1)) is not None


def test_sync_durability_writes_before_the_handler_returns(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    orchestrator = TorrentOrchestrator(
        bus, store, settings=settings(durability=Durability.SYNC, flush_interval_ms=60_000)
    )
    orchestrator.start()
    bus.publish(events.TorrentAdded(torrent_id=tid(1), name="sync"))
    assert store.get_torrent(tid(1)) is not None
    for done in (1, 2, 3):
        bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=done, total=3))
        stored = store.get_torrent(tid(1))
        assert stored is not None and stored.progress.downloaded == done
    assert plugin.writes("upsert_torrents") == [1]  # the add, whole
    assert plugin.writes("update_progress") == [1, 1, 1]  # each progress event, narrow, at once
    orchestrator.close()


def test_shutdown_reports_what_it_could_not_write_by_the_deadline(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    orchestrator = start_orchestrator(bus, store, backoff=FAST)
    plugin.writes_fail = True
    for n in range(5):
        bus.publish(events.TorrentAdded(torrent_id=tid(n), name=str(n)))
    started = time.monotonic()
    report = orchestrator.close(deadline=0.5)
    assert time.monotonic() - started < 3
    assert set(report.unwritten) == {tid(n) for n in range(5)}


def test_reconcile_marks_store_only_torrents_stopped_and_adds_engine_only_ones(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, _ = faulty
    known = [
        TorrentStatus(id=tid(n), name=f"t{n}", state=TorrentState.SEEDING, added_at=t, last_updated=t)
        for n, t in ((1, _now()), (2, _now()))
    ]
    store.upsert_torrents(known)
    orchestrator = TorrentOrchestrator(bus, store, settings=settings())
    orchestrator.hydrate()
    orchestrator.start()
    report = orchestrator.reconcile([RestoredTorrent(tid(2), "t2"), RestoredTorrent(tid(3), "t3")])
    assert (report.matched, report.stopped, report.added) == (1, (tid(1),), (tid(3),))
    assert orchestrator.catalog[tid(1)].state is TorrentState.STOPPED
    assert orchestrator.catalog[tid(1)].failure == NOT_IN_ENGINE
    assert orchestrator.catalog[tid(2)].state is TorrentState.SEEDING
    assert orchestrator.catalog[tid(3)].name == "t3"
    orchestrator.close()
    assert store_matches_catalog(store, orchestrator)


def test_reconcile_puts_the_restored_state_in_the_catalog_and_rewrites_only_what_changed(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    """A torrent stored as queued (an import) comes back seeding and whole; one stored seeding is left as it was."""
    store, _ = faulty
    t = _now()
    files = (
        FileEntry(index=0, path="a.bin", size=100),
        FileEntry(index=1, path="b.bin", size=50, priority=0, selected=False),
    )
    imported = TorrentStatus(
        id=tid(1), name="t1", added_at=t, last_updated=t, progress=Progress(total=100), files=files
    )
    whole = (attrs.evolve(files[0], bytes_completed=100), files[1])
    seeding = attrs.evolve(imported, id=tid(2), state=TorrentState.SEEDING,
                           progress=Progress(downloaded=100, total=100, eta_seconds=0), files=whole)  # fmt: skip
    paused = attrs.evolve(seeding, id=tid(3), state=TorrentState.STOPPED, failure=NOT_IN_ENGINE)
    store.upsert_torrents([imported, seeding, paused])
    orchestrator = TorrentOrchestrator(bus, store, settings=settings())
    orchestrator.hydrate()
    orchestrator.start()
    orchestrator.reconcile(
        [
            RestoredTorrent(tid(1), "t1", state=TorrentState.SEEDING, complete=True),
            RestoredTorrent(tid(2), "t2", state=TorrentState.SEEDING, complete=True),
            RestoredTorrent(tid(3), "t3", state=TorrentState.STOPPED, complete=True),
        ]
    )
    first = orchestrator.catalog[tid(1)]
    assert (first.state, first.progress.downloaded, first.files) == (TorrentState.SEEDING, 100, whole)
    assert orchestrator.catalog[tid(2)] == seeding, "a status the restore agrees with is not touched"
    third = orchestrator.catalog[tid(3)]
    assert (third.state, third.failure) == (TorrentState.STOPPED, None), "restored: no longer 'not in the engine'"
    assert orchestrator.pending_writes == 2
    orchestrator.close()
    assert store_matches_catalog(store, orchestrator)


def test_completion_hands_the_torrent_to_fsops_once(bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    handed: list[TorrentStatus] = []
    orchestrator = start_orchestrator(bus, faulty[0], on_completed=handed.append)
    lifecycle(bus, 1)
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=100, total=100))
    assert [s.id for s in handed] == [tid(1)] and handed[0].state is TorrentState.COMPLETED
    orchestrator.close()


def test_with_no_store_the_orchestrator_behaves_the_same(bus: EventBus) -> None:
    orchestrator = TorrentOrchestrator(bus, RuntimeStore.none(), settings=settings())
    assert orchestrator.hydrate() == 0
    orchestrator.start()
    lifecycle(bus, 1)
    assert orchestrator.catalog[tid(1)].state is TorrentState.COMPLETED
    assert orchestrator.pending_writes == 0
    assert orchestrator.close().complete


def test_the_memory_store_round_trips_a_catalog(bus: EventBus, tmp_path: Path) -> None:
    store = RuntimeStore.open(MemoryStore(), name="memory", data_dir=tmp_path)
    orchestrator = start_orchestrator(bus, store)
    for n in range(10):
        lifecycle(bus, n)
    orchestrator.close()
    assert store_matches_catalog(store, orchestrator)


def _now() -> datetime:
    return datetime.now(UTC)


def test_flush_waits_until_the_store_holds_every_change(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    orchestrator = start_orchestrator(bus, store, flush_interval_ms=60_000, backoff=FAST)
    for n in range(5):
        bus.publish(events.ProgressUpdated(torrent_id=tid(n), downloaded=n, total=10))
    assert orchestrator.flush(timeout=5)
    assert store_matches_catalog(store, orchestrator)
    plugin.writes_fail = True
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=9, total=10))
    assert not orchestrator.flush(timeout=0.3), "flush reported success while the store was down"
    plugin.writes_fail = False
    assert orchestrator.flush(timeout=5)
    orchestrator.close()


def test_torrents_the_engine_adds_at_start_are_not_marked_stopped(
    bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, _ = faulty
    now = _now()
    store.upsert_torrents([TorrentStatus(id=tid(n), name=f"t{n}", added_at=now, last_updated=now) for n in (1, 2)])
    orchestrator = TorrentOrchestrator(bus, store, settings=settings())
    orchestrator.hydrate()
    orchestrator.start()
    bus.publish(events.TorrentAdded(torrent_id=tid(2), name="t2"))  # re-added by the engine, not restored
    bus.publish(events.TorrentAdded(torrent_id=tid(3), name="new"))  # new in this run
    report = orchestrator.reconcile([])
    assert report.stopped == (tid(1),)
    assert orchestrator.catalog[tid(2)].state is TorrentState.QUEUED
    assert orchestrator.catalog[tid(3)].state is TorrentState.QUEUED
    orchestrator.close()


def test_progress_only_changes_take_the_narrow_path(bus: EventBus, faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    orchestrator = start_orchestrator(bus, store)
    bus.publish(events.TorrentAdded(torrent_id=tid(1), name="one"))
    assert orchestrator.flush(5)
    for done in (1, 2, 3):
        bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=done, total=10))
    bus.publish(events.ProgressUpdated(torrent_id=tid(2), downloaded=1, total=10))  # unknown to the store: goes whole
    assert orchestrator.flush(5)
    assert plugin.writes("update_progress") and plugin.writes("upsert_torrents")[-1] == 1
    assert store_matches_catalog(store, orchestrator)
    bus.publish(events.StateChanged(torrent_id=tid(1), state=TorrentState.SEEDING))
    bus.publish(events.ProgressUpdated(torrent_id=tid(1), downloaded=10, total=10))  # after a whole change: whole
    narrow_before = len(plugin.writes("update_progress"))
    assert orchestrator.flush(5)
    assert len(plugin.writes("update_progress")) == narrow_before
    assert store_matches_catalog(store, orchestrator)
    orchestrator.close()


def test_a_failed_whole_write_makes_the_next_progress_whole(faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    health = HealthBoard()
    writer = StoreWriter(store, backoff=FAST, health=health)
    first = TorrentStatus(id=tid(1), name="whole", added_at=_now(), last_updated=_now())
    plugin.writes_fail = True
    writer.upsert(first)
    writer.start()
    wait_for(lambda: not health.ok)  # the whole status failed and waits for a retry
    writer.upsert(attrs.evolve(first, progress=Progress(downloaded=5, total=10)), progress_only=True)
    plugin.writes_fail = False
    assert writer.close().complete
    stored = store.get_torrent(tid(1))
    assert stored is not None and stored.name == "whole" and stored.progress.downloaded == 5
