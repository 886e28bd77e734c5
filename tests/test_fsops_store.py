"""Job persistence through the RuntimeStore facade: history, failures, retries, and a store that fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

import pytest

from revaer_core import InvalidInput, JobEvent, JobHistoryEntry, JobStatus, RuntimeStore, TransferMode
from revaer_core.events import EventPayload, FsOpsCompleted, FsOpsFailed, HealthChanged
from revaer_core.health import RUNTIME_STORE, HealthBoard
from revaer_core.testing.waiting import wait_for
from tests.support.fsops import Events, Layout, Services, SimulatedCrash, new_id, run, status, tree
from tests.support.stores import FaultyStore


def events_of(history: Sequence[JobHistoryEntry]) -> list[tuple[JobEvent, JobStatus, int]]:
    return [(e.event, e.status, e.attempt) for e in history]


def test_a_completed_torrent_becomes_a_moved_job_with_history(
    layout: Layout, services: Services, memory_store: RuntimeStore
) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    paths: list[tuple[UUID, str]] = []
    events = Events()
    service = services(
        layout.settings(transfer_mode="move"),
        memory_store,
        publish=events,
        on_library_path=lambda tid, path: paths.append((tid, path)),
    )
    outcome = run(service, torrent)
    destination = str(layout.library / "Show")
    job = memory_store.get_job(torrent.id)
    assert job is not None
    assert (job.status, job.destination, job.transfer_mode, job.attempt) == (
        JobStatus.MOVED,
        destination,
        TransferMode.MOVE,
        1,
    )
    assert job.source == str(layout.downloads / "Show")
    history = memory_store.job_history(torrent.id)
    assert [(e.event, e.destination, e.transfer_mode) for e in history] == [
        (JobEvent.STARTED, None, None),
        (JobEvent.COMPLETED, destination, TransferMode.MOVE),
    ]
    assert outcome.library_path == destination and paths == [(torrent.id, destination)]
    assert events.kinds()[0] == "fsops_started" and events.kinds()[-1] == "fsops_completed"
    assert events.payloads[-1] == FsOpsCompleted(torrent_id=torrent.id, destination=destination)


def test_a_failure_is_recorded_with_its_error_and_retry_starts_attempt_two(
    layout: Layout, services: Services, memory_store: RuntimeStore
) -> None:
    torrent = status(new_id(), "Show", layout.downloads)  # nothing downloaded there yet
    events = Events()
    service = services(layout.settings(), memory_store, publish=events)
    failed = run(service, torrent)
    message = f"locate_source: source {layout.downloads / 'Show'} not found"
    assert failed.status is JobStatus.FAILED and failed.error == message
    job = memory_store.get_job(torrent.id)
    assert job is not None and (job.status, job.last_error) == (JobStatus.FAILED, message)
    assert events.payloads[-1] == FsOpsFailed(torrent_id=torrent.id, message=message)

    layout.payload("Show", {"a.mkv": b"a"})
    retried = service.retry(torrent.id).result(timeout=10)
    assert retried.status is JobStatus.MOVED and retried.resumed_from == "locate_source"
    assert events_of(memory_store.job_history(torrent.id)) == [
        (JobEvent.STARTED, JobStatus.MOVING, 1),
        (JobEvent.FAILED, JobStatus.FAILED, 1),
        (JobEvent.RETRY, JobStatus.PENDING, 1),
        (JobEvent.STARTED, JobStatus.MOVING, 2),
        (JobEvent.COMPLETED, JobStatus.MOVED, 2),
    ]
    assert memory_store.job_history(torrent.id)[1].detail == message


def test_retry_is_refused_for_a_job_that_has_not_failed(
    layout: Layout, services: Services, memory_store: RuntimeStore
) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    service = services(layout.settings(), memory_store)
    run(service, torrent)
    with pytest.raises(InvalidInput, match="only a failed job can be retried"):
        service.retry(torrent.id)
    with pytest.raises(InvalidInput, match="no FsOps job is known for torrent"):
        service.retry(new_id())
    assert len(memory_store.job_history(torrent.id)) == 2


def test_a_job_marked_pending_while_the_daemon_was_down_runs_at_startup(
    layout: Layout, services: Services, memory_store: RuntimeStore
) -> None:
    torrent = status(new_id(), "Show", layout.downloads)
    first = services(layout.settings(), memory_store)
    assert run(first, torrent).status is JobStatus.FAILED
    first.close()
    layout.payload("Show", {"a.mkv": b"a"})
    memory_store.retry_job(torrent.id)  # what `revaer jobs retry` does with the daemon down

    restarted = services(layout.settings(), memory_store)  # a new process: knows the job only from the store
    outcomes = [f.result(timeout=10) for f in restarted.resume_pending()]
    assert [(o.torrent_id, o.status) for o in outcomes] == [(torrent.id, JobStatus.MOVED)]
    job = memory_store.get_job(torrent.id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.MOVED, 2)
    assert tree(layout.library / "Show") == {"a.mkv": b"a"}


def test_a_job_interrupted_by_a_crash_resumes_at_startup_without_a_store(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    with pytest.raises(SimulatedCrash):
        services(layout.settings(), publish=Events(crash_before="transfer")).submit(torrent).result(timeout=10)
    restarted = services(layout.settings())
    outcomes = [f.result(timeout=10) for f in restarted.resume_pending()]
    assert [(o.status, o.resumed_from) for o in outcomes] == [(JobStatus.MOVED, "transfer")]
    assert restarted.resume_pending() == []  # finished: nothing left to resume


def test_a_store_that_fails_for_a_while_degrades_health_then_catches_up_without_duplicates(
    layout: Layout,
    services: Services,
    faulty: tuple[RuntimeStore, FaultyStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, plugin = faulty
    health_events: list[EventPayload] = []
    health = HealthBoard(publish=health_events.append)
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    plugin.fail_next = 4
    service = services(layout.settings(), store, health=health)
    with caplog.at_level(logging.WARNING):
        outcome = run(service, torrent)
        assert outcome.status is JobStatus.MOVED  # the job never fails because of the store
        assert service.recorder.wait_idle(timeout=5)
        wait_for(lambda: health.ok, "health to recover")  # reported just after the queue emptied
    assert plugin.failures == 4
    assert health_events == [
        HealthChanged(degraded=frozenset({RUNTIME_STORE})),
        HealthChanged(degraded=frozenset()),
    ]
    assert health.ok
    assert events_of(store.job_history(torrent.id)) == [
        (JobEvent.STARTED, JobStatus.MOVING, 1),
        (JobEvent.COMPLETED, JobStatus.MOVED, 1),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(torrent.id) in w and "queued" in w for w in warnings)
    assert not any("hunter2" in w for w in warnings)


def test_a_write_that_landed_but_whose_answer_was_lost_is_not_written_twice(
    layout: Layout, services: Services, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    plugin.lose_acks = True
    plugin.fail_next = 1  # the "started" write commits, then the connection drops
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    service = services(layout.settings(), store)
    assert run(service, torrent).status is JobStatus.MOVED
    assert service.recorder.wait_idle(timeout=5)
    assert events_of(store.job_history(torrent.id)) == [
        (JobEvent.STARTED, JobStatus.MOVING, 1),
        (JobEvent.COMPLETED, JobStatus.MOVED, 1),
    ]


def test_transitions_of_one_torrent_land_in_order_after_an_outage(
    layout: Layout, services: Services, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    torrents = [status(new_id(), f"Show{i}", layout.downloads) for i in range(3)]
    for i in range(2):
        layout.payload(f"Show{i}", {"a.mkv": b"a"})  # Show2 has no payload: it fails
    plugin.fail_next = 1_000
    service = services(layout.settings(), store)
    outcomes = [service.submit(t).result(timeout=10) for t in torrents]
    assert [o.status for o in outcomes] == [JobStatus.MOVED, JobStatus.MOVED, JobStatus.FAILED]
    assert store.get_job(torrents[0].id) is None  # nothing reached the store yet
    plugin.fail_next = 0
    assert service.recorder.wait_idle(timeout=5)
    for torrent, last in zip(torrents, (JobEvent.COMPLETED, JobEvent.COMPLETED, JobEvent.FAILED), strict=True):
        assert [e.event for e in store.job_history(torrent.id)] == [JobEvent.STARTED, last]


def test_shutdown_reports_what_never_reached_the_store(
    layout: Layout, services: Services, faulty: tuple[RuntimeStore, FaultyStore]
) -> None:
    store, plugin = faulty
    plugin.fail_next = 1_000
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    service = services(layout.settings(), store)
    run(service, torrent)
    lost = service.close(deadline=0.05)
    assert [(t.torrent_id, t.event) for t in lost] == [(torrent.id, JobEvent.STARTED), (torrent.id, JobEvent.COMPLETED)]


def test_with_no_store_jobs_run_and_report_their_library_path(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    store = RuntimeStore.none()
    outcome = run(services(layout.settings(), store), torrent)
    assert outcome.status is JobStatus.MOVED and outcome.library_path == str(layout.library / "Show")
    assert store.get_job(torrent.id) is None


def test_disabled_fsops_does_nothing(layout: Layout, services: Services, memory_store: RuntimeStore) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    service = services(layout.settings(enabled=False), memory_store)
    outcome = run(service, torrent)
    assert (outcome.status, outcome.error) == (JobStatus.SKIPPED, "fsops is disabled")
    assert memory_store.get_job(torrent.id) is None and tree(layout.library) == {}
    with pytest.raises(InvalidInput, match="fsops is disabled"):
        service.retry(torrent.id)


def test_a_torrent_submitted_twice_runs_once(layout: Layout, services: Services, memory_store: RuntimeStore) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    service = services(layout.settings(), memory_store)
    futures = [service.submit(torrent) for _ in range(3)]
    outcomes = [f.result(timeout=10) for f in futures]
    # a submit while the job runs gets the same future; one after it finished finds it done
    assert len({id(o) for o in outcomes if not o.already_done}) == 1
    assert [e.event for e in memory_store.job_history(torrent.id)] == [JobEvent.STARTED, JobEvent.COMPLETED]


def test_a_failed_job_write_for_a_torrent_removed_since_is_dropped_not_retried(
    layout: Layout, services: Services, faulty: tuple[RuntimeStore, FaultyStore], caplog: pytest.LogCaptureFixture
) -> None:
    store, plugin = faulty
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    catalog = {torrent.id}  # what the daemon hands in: its catalog's membership test
    health = HealthBoard()
    service = services(layout.settings(), store, health=health, tracked=catalog.__contains__)
    plugin.writes_fail = True
    with caplog.at_level(logging.WARNING):
        assert run(service, torrent).status is JobStatus.MOVED
        assert not service.recorder.wait_idle(timeout=0.3), "a tracked torrent's transitions wait for the store"
        assert RUNTIME_STORE in health.degraded
        catalog.discard(torrent.id)  # the operator removed the torrent while the store was down
        assert service.recorder.wait_idle(timeout=5)
        wait_for(lambda: RUNTIME_STORE not in health.degraded)  # recovered just after the queue emptied
    assert any(str(torrent.id) in r.getMessage() and "was removed" in r.getMessage() for r in caplog.records)
    plugin.writes_fail = False
    assert store.get_job(torrent.id) is None
