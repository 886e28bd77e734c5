"""Contract tests for the JobStore hooks."""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import attrs
import pytest

from revaer_core.contract import samples
from revaer_core.contract.base import ContractBase, StoreOpener
from revaer_core.jobs import (
    FsJob,
    JobEvent,
    JobStatus,
    JobTransition,
    TransferMode,
    TransitionRefused,
    apply_transition,
)
from revaer_core.query import JobQuery, walk
from revaer_core.status import TorrentStatus
from revaer_core.store import RuntimeStore
from revaer_core.storetypes import Capability, StoreRole
from revaer_core.testing.jobs import job_completed, job_failed, job_skipped, job_started

SOURCE = "/srv/downloads/torrent"
DEST = "/srv/library/Torrent"


def _at(seconds: int) -> datetime:
    return samples.EPOCH + timedelta(seconds=seconds)


@contextlib.contextmanager
def _busy_switching() -> Iterator[None]:
    """Make threads switch every few microseconds, so that an unguarded read-modify-write shows."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _run_together(workers: Sequence[Callable[[], None]]) -> None:
    """Run ``workers`` in threads started at once; re-raise the first error any of them hit."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def run(work: Callable[[], None]) -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    with _busy_switching():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    if errors:
        raise AssertionError(f"{len(errors)} concurrent write(s) failed; the first: {errors[0]!r}") from errors[0]


def _progress_write(base: TorrentStatus, writer: int, n: int) -> TorrentStatus:
    """``base`` as writer ``writer`` leaves it at its ``n``-th write."""
    return samples.progressed(base, writer * 1_000_000 + n)


def _attempt(store: RuntimeStore, transition: JobTransition) -> bool:
    """Record ``transition``; whether it applied (a refusal is the store following the rules)."""
    try:
        store.record_job_transition(transition)
    except TransitionRefused:
        return False
    return True


def assert_history_explains_the_job(store: RuntimeStore, torrent_id: uuid.UUID, applied: int) -> None:
    """The job's history is one serial order of the ``applied`` transitions, and the job is where it leads.

    Replaying the history through ``apply_transition`` must give, entry by
    entry, the status and attempt each entry records, and end at the stored job.
    """
    history = store.job_history(torrent_id)
    assert [e.seq for e in history] == list(range(1, applied + 1)), (
        f"{applied} transitions applied, history has seq {[e.seq for e in history]}"
    )
    job: FsJob | None = None
    for entry in history:
        transition = JobTransition(**{f.name: getattr(entry, f.name) for f in attrs.fields(JobTransition)})
        job = apply_transition(job, transition)  # raises if the history is no order the rules allow
        assert (job.status, job.attempt) == (entry.status, entry.attempt), f"history entry {entry.seq} is torn"
    stored = store.get_job(torrent_id)
    assert stored is not None and job is not None
    assert (stored.status, stored.attempt, stored.last_error) == (job.status, job.attempt, job.last_error)


class JobStoreContract(ContractBase):
    """What ``record_job_transition``, ``get_job``, ``list_jobs`` and ``job_history`` must do."""

    @pytest.fixture
    def torrent_id(self, store: RuntimeStore) -> uuid.UUID:
        """A stored torrent: Revaer records jobs only for torrents it has stored."""
        status = samples.status(42)
        store.upsert_torrents([status])
        return status.id

    def test_status_writes_after_job_transitions_keep_the_job_and_its_history(
        self, store: RuntimeStore, torrent_id: uuid.UUID
    ) -> None:
        # In a real run every status upsert of a torrent follows its job's transitions.
        job_started(store, torrent_id, SOURCE, at=_at(1))
        job_failed(store, torrent_id, "EACCES", at=_at(2))
        store.retry_job(torrent_id, at=_at(3))
        job = job_started(store, torrent_id, SOURCE, at=_at(4))
        history = store.job_history(torrent_id)
        status = store.get_torrent(torrent_id)
        assert status is not None
        store.upsert_torrents([status])  # the same status again
        changed = attrs.evolve(status, name="renamed", paused=True, library_path=DEST, last_updated=_at(5))
        store.upsert_torrents([changed])
        store.update_progress([_progress_write(changed, 1, 1)])
        assert store.get_job(torrent_id) == job
        assert store.job_history(torrent_id) == history
        assert [j.torrent_id for j in store.list_jobs(JobQuery()).items] == [torrent_id]

    def test_no_job_until_one_starts(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        assert store.get_job(torrent_id) is None
        assert store.job_history(torrent_id) == []
        assert store.list_jobs(JobQuery()).items == ()

    def test_start_opens_the_first_attempt(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job = job_started(store, torrent_id, SOURCE, at=samples.EPOCH)
        assert job is not None
        assert (job.status, job.attempt, job.source, job.created_at) == (JobStatus.MOVING, 1, SOURCE, samples.EPOCH)
        assert store.get_job(torrent_id) == job

    def test_completion_keeps_destination_and_transfer_mode(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job_started(store, torrent_id, SOURCE, at=samples.EPOCH)
        done = job_completed(
            store, torrent_id, SOURCE, DEST, TransferMode.HARDLINK, at=samples.EPOCH + timedelta(seconds=3)
        )
        assert done is not None
        assert (done.status, done.destination, done.transfer_mode) == (JobStatus.MOVED, DEST, TransferMode.HARDLINK)
        assert done.updated_at == samples.EPOCH + timedelta(seconds=3)
        assert store.get_job(torrent_id) == done

    def test_failure_keeps_the_error(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job_started(store, torrent_id, SOURCE, at=samples.EPOCH)
        error = "No space left on device: '/srv/library/Torrent/a.mkv' — ünïcode too"
        failed = job_failed(store, torrent_id, error)
        assert failed is not None and failed.status is JobStatus.FAILED
        assert store.get_job(torrent_id) == failed
        assert failed.last_error == error

    def test_a_duplicate_start_does_not_reopen_a_finished_job(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job_started(store, torrent_id, SOURCE)
        done = job_completed(store, torrent_id, SOURCE, DEST, TransferMode.MOVE)
        with pytest.raises(TransitionRefused):
            job_started(store, torrent_id, SOURCE)
        assert store.get_job(torrent_id) == done
        assert [e.event for e in store.job_history(torrent_id)] == [JobEvent.STARTED, JobEvent.COMPLETED]

    def test_retry_reopens_only_a_failed_job(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job_started(store, torrent_id, SOURCE)
        with pytest.raises(TransitionRefused):
            store.retry_job(torrent_id)
        job_failed(store, torrent_id, "permission denied")
        pending = store.retry_job(torrent_id)
        assert pending is not None and pending.status is JobStatus.PENDING and pending.attempt == 1
        again = job_started(store, torrent_id, SOURCE)
        assert again is not None and (again.status, again.attempt, again.last_error) == (JobStatus.MOVING, 2, None)

    def test_retry_of_an_unknown_job_is_refused(self, store: RuntimeStore) -> None:
        with pytest.raises(TransitionRefused):
            store.retry_job(uuid.uuid4())

    def test_skip_records_the_reason(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job = job_skipped(store, torrent_id, SOURCE, "nothing matched the include rules")
        assert job is not None and job.status is JobStatus.SKIPPED
        assert store.job_history(torrent_id)[-1].detail == "nothing matched the include rules"

    def test_history_audits_every_attempt(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job_started(store, torrent_id, SOURCE, at=_at(1))
        job_failed(store, torrent_id, "EACCES", at=_at(2))
        store.retry_job(torrent_id, at=_at(3))
        job_started(store, torrent_id, SOURCE, at=_at(4))
        job_completed(store, torrent_id, SOURCE, DEST, TransferMode.COPY, at=_at(5))
        history = store.job_history(torrent_id)
        assert [(e.seq, e.event, e.status, e.attempt) for e in history] == [
            (1, JobEvent.STARTED, JobStatus.MOVING, 1),
            (2, JobEvent.FAILED, JobStatus.FAILED, 1),
            (3, JobEvent.RETRY, JobStatus.PENDING, 1),
            (4, JobEvent.STARTED, JobStatus.MOVING, 2),
            (5, JobEvent.COMPLETED, JobStatus.MOVED, 2),
        ]
        assert history[1].detail == "EACCES"
        assert (history[4].destination, history[4].transfer_mode) == (DEST, TransferMode.COPY)
        assert [e.at for e in history] == [_at(n) for n in range(1, 6)]
        assert all(e.torrent_id == torrent_id for e in history)

    def test_removing_the_torrent_removes_its_job_and_history(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job_started(store, torrent_id, SOURCE)
        store.remove_torrents([torrent_id])
        assert store.get_job(torrent_id) is None
        assert store.job_history(torrent_id) == []

    def test_list_jobs_filters_by_status_and_pages(self, store: RuntimeStore) -> None:
        statuses = [samples.status(n) for n in range(25)]
        store.upsert_torrents(statuses)
        for n, status in enumerate(statuses):
            job_started(store, status.id, SOURCE, at=_at(n // 2))
            if n % 3 == 0:
                job_failed(store, status.id, "boom")
        failed = {s.id for n, s in enumerate(statuses) if n % 3 == 0}
        query = JobQuery(statuses={JobStatus.FAILED}, limit=3)
        seen = [j.torrent_id for j in walk(store.list_jobs, query)]
        assert len(seen) == len(set(seen)) and set(seen) == failed
        every = store.list_jobs(JobQuery(limit=100)).items
        assert [JobQuery.key(j) for j in every] == sorted(JobQuery.key(j) for j in every)

    @staticmethod
    def _jobs_in_every_status(store: RuntimeStore) -> dict[JobStatus, int]:
        """Jobs in each status (a moving one more than the others), and the counts they make."""
        statuses = [samples.status(n) for n in range(11)]
        store.upsert_torrents(statuses)
        for n, status in enumerate(statuses):
            kind = n % 5
            if kind == 4:
                job_skipped(store, status.id, SOURCE, "nothing to move")
                continue
            job_started(store, status.id, SOURCE)
            if kind == 1:
                job_completed(store, status.id, SOURCE, DEST, TransferMode.COPY)
            elif kind >= 2:
                job_failed(store, status.id, "EACCES")
                if kind == 3:
                    store.retry_job(status.id)
        return {
            JobStatus.MOVING: 3,
            JobStatus.MOVED: 2,
            JobStatus.FAILED: 2,
            JobStatus.PENDING: 2,
            JobStatus.SKIPPED: 2,
        }

    def test_job_counts_follow_each_transition_and_removal(self, store: RuntimeStore) -> None:
        assert store.count_jobs() == dict.fromkeys(JobStatus, 0)
        expected = self._jobs_in_every_status(store)
        assert store.count_jobs() == expected
        listed = store.list_jobs(JobQuery(limit=100)).items
        assert store.count_jobs() == {s: sum(1 for j in listed if j.status is s) for s in JobStatus}
        failed = next(j.torrent_id for j in listed if j.status is JobStatus.FAILED)
        store.retry_job(failed)
        store.remove_torrents([next(j.torrent_id for j in listed if j.status is JobStatus.MOVED)])
        assert store.count_jobs() == {
            **expected,
            JobStatus.FAILED: 1,
            JobStatus.PENDING: 3,
            JobStatus.MOVED: 1,
        }

    def test_count_jobs_itself_counts_in_the_storage(self, store: RuntimeStore) -> None:
        # Through the facade a missing count_jobs is a walk through list_jobs; here the backend's own answer.
        self.require_hook(store, "count_jobs")
        assert {s: n for s, n in self.hooks(store).count_jobs().items() if n} == {}
        expected = self._jobs_in_every_status(store)
        counted = self.hooks(store).count_jobs()
        assert all(isinstance(s, JobStatus) for s in counted), f"count_jobs keys must be JobStatus: {counted!r}"
        assert {s: n for s, n in counted.items() if n} == expected

    def test_transitions_from_many_threads_keep_each_history_whole(self, store: RuntimeStore) -> None:
        statuses = [samples.status(n) for n in range(8)]
        store.upsert_torrents(statuses)

        def work(torrent_id: uuid.UUID) -> None:
            for _ in range(5):
                job_started(store, torrent_id, SOURCE)
                job_failed(store, torrent_id, "again")
                store.retry_job(torrent_id)

        threads = [threading.Thread(target=work, args=(s.id,)) for s in statuses]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for status in statuses:
            history = store.job_history(status.id)
            assert [e.seq for e in history] == list(range(1, 16))
            job = store.get_job(status.id)
            assert job is not None and job.attempt == 5 and job.status is JobStatus.PENDING

    def test_writers_of_one_torrent_interleave_as_one_serial_order(
        self, store: RuntimeStore, torrent_id: uuid.UUID
    ) -> None:
        # The writer upserts statuses and sources, the engine saves resume data, FsOps and an operator
        # move the job: all at once, on one torrent.
        base = store.get_torrent(torrent_id)
        assert base is not None
        resume = Capability.RESUME_DATA in store.capabilities()
        sources = Capability.SOURCES in store.capabilities()
        writers, rounds = 4, 30
        applied = [0] * writers

        def writer(k: int) -> Callable[[], None]:
            def work() -> None:
                for n in range(rounds):
                    store.upsert_torrents([_progress_write(base, k, 2 * n)])
                    if _attempt(
                        store, JobTransition(torrent_id=torrent_id, event=JobEvent.STARTED, at=_at(n), source=SOURCE)
                    ):
                        applied[k] += 1
                    store.update_progress([_progress_write(base, k, 2 * n + 1)])
                    if resume:
                        store.save_resume_data(torrent_id, f"{k}:{n}".encode())
                    if sources:  # a re-add from another surface replaces the source
                        store.save_torrent_sources([samples.source(42, file_priorities=(k, n % 8))])
                    failed = JobTransition(torrent_id=torrent_id, event=JobEvent.FAILED, at=_at(n), detail=f"w{k}")
                    applied[k] += _attempt(store, failed)
                    applied[k] += _attempt(store, JobTransition(torrent_id=torrent_id, event=JobEvent.RETRY, at=_at(n)))

            return work

        _run_together([writer(k) for k in range(writers)])
        last_writes = [_progress_write(base, k, 2 * rounds - 1) for k in range(writers)]
        assert store.get_torrent(torrent_id) in last_writes, (
            "the status is no writer's last write: a torn or lost write"
        )
        assert store.load_torrents() == [store.get_torrent(torrent_id)]
        assert_history_explains_the_job(store, torrent_id, sum(applied))
        if resume:
            assert store.load_resume_data().get(torrent_id) in {f"{k}:{rounds - 1}".encode() for k in range(writers)}
        if sources:
            last_sources = [samples.source(42, file_priorities=(k, (rounds - 1) % 8)) for k in range(writers)]
            assert store.load_torrent_sources().get(torrent_id) in last_sources

    def test_a_client_writes_safely_alongside_a_daemon(
        self, store: RuntimeStore, store_opener: StoreOpener, torrent_id: uuid.UUID
    ) -> None:
        # ``revaer fsops retry`` is a CLIENT writing job transitions while the daemon writes statuses and jobs.
        self.require(store, Capability.SHARED)
        client = store_opener(role=StoreRole.CLIENT)
        base = store.get_torrent(torrent_id)
        assert base is not None
        rounds = 25
        applied = {"daemon": 0, "client": 0}

        def daemon() -> None:
            for n in range(rounds):
                store.upsert_torrents([_progress_write(base, 1, 2 * n)])
                applied["daemon"] += _attempt(
                    store, JobTransition(torrent_id=torrent_id, event=JobEvent.STARTED, at=_at(n), source=SOURCE)
                )
                store.update_progress([_progress_write(base, 1, 2 * n + 1)])
                applied["daemon"] += _attempt(
                    store, JobTransition(torrent_id=torrent_id, event=JobEvent.FAILED, at=_at(n), detail="disk full")
                )

        def operator() -> None:
            for n in range(rounds * 2):
                applied["client"] += _attempt(
                    client, JobTransition(torrent_id=torrent_id, event=JobEvent.RETRY, at=_at(n))
                )

        try:
            _run_together([daemon, operator])
            assert client.get_torrent(torrent_id) == _progress_write(base, 1, 2 * rounds - 1)
            assert_history_explains_the_job(client, torrent_id, applied["daemon"] + applied["client"])
        finally:
            client.close()
        assert_history_explains_the_job(store, torrent_id, applied["daemon"] + applied["client"])
