"""Contract tests for the JobStore hooks."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import pytest

from revaer_core.contract import samples
from revaer_core.contract.base import ContractBase
from revaer_core.jobs import JobEvent, JobStatus, TransferMode, TransitionRefused
from revaer_core.query import JobQuery, walk
from revaer_core.store import RuntimeStore

SOURCE = "/srv/downloads/torrent"
DEST = "/srv/library/Torrent"


def _at(seconds: int) -> datetime:
    return samples.EPOCH + timedelta(seconds=seconds)


class JobStoreContract(ContractBase):
    """What ``record_job_transition``, ``get_job``, ``list_jobs`` and ``job_history`` must do."""

    @pytest.fixture
    def torrent_id(self, store: RuntimeStore) -> uuid.UUID:
        """A stored torrent: Revaer records jobs only for torrents it has stored."""
        status = samples.status(42)
        store.upsert_torrents([status])
        return status.id

    def test_no_job_until_one_starts(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        assert store.get_job(torrent_id) is None
        assert store.job_history(torrent_id) == []
        assert store.list_jobs(JobQuery()).items == ()

    def test_start_opens_the_first_attempt(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job = store.job_started(torrent_id, SOURCE, at=samples.EPOCH)
        assert job is not None
        assert (job.status, job.attempt, job.source, job.created_at) == (JobStatus.MOVING, 1, SOURCE, samples.EPOCH)
        assert store.get_job(torrent_id) == job

    def test_completion_keeps_destination_and_transfer_mode(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        store.job_started(torrent_id, SOURCE, at=samples.EPOCH)
        done = store.job_completed(
            torrent_id, SOURCE, DEST, TransferMode.HARDLINK, at=samples.EPOCH + timedelta(seconds=3)
        )
        assert done is not None
        assert (done.status, done.destination, done.transfer_mode) == (JobStatus.MOVED, DEST, TransferMode.HARDLINK)
        assert done.updated_at == samples.EPOCH + timedelta(seconds=3)
        assert store.get_job(torrent_id) == done

    def test_failure_keeps_the_error(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        store.job_started(torrent_id, SOURCE, at=samples.EPOCH)
        error = "No space left on device: '/srv/library/Torrent/a.mkv' — ünïcode too"
        failed = store.job_failed(torrent_id, error)
        assert failed is not None and failed.status is JobStatus.FAILED
        assert store.get_job(torrent_id) == failed
        assert failed.last_error == error

    def test_a_duplicate_start_does_not_reopen_a_finished_job(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        store.job_started(torrent_id, SOURCE)
        done = store.job_completed(torrent_id, SOURCE, DEST, TransferMode.MOVE)
        with pytest.raises(TransitionRefused):
            store.job_started(torrent_id, SOURCE)
        assert store.get_job(torrent_id) == done
        assert [e.event for e in store.job_history(torrent_id)] == [JobEvent.STARTED, JobEvent.COMPLETED]

    def test_retry_reopens_only_a_failed_job(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        store.job_started(torrent_id, SOURCE)
        with pytest.raises(TransitionRefused):
            store.retry_job(torrent_id)
        store.job_failed(torrent_id, "permission denied")
        pending = store.retry_job(torrent_id)
        assert pending is not None and pending.status is JobStatus.PENDING and pending.attempt == 1
        again = store.job_started(torrent_id, SOURCE)
        assert again is not None and (again.status, again.attempt, again.last_error) == (JobStatus.MOVING, 2, None)

    def test_retry_of_an_unknown_job_is_refused(self, store: RuntimeStore) -> None:
        with pytest.raises(TransitionRefused):
            store.retry_job(uuid.uuid4())

    def test_skip_records_the_reason(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        job = store.job_skipped(torrent_id, SOURCE, "nothing matched the include rules")
        assert job is not None and job.status is JobStatus.SKIPPED
        assert store.job_history(torrent_id)[-1].detail == "nothing matched the include rules"

    def test_history_audits_every_attempt(self, store: RuntimeStore, torrent_id: uuid.UUID) -> None:
        store.job_started(torrent_id, SOURCE, at=_at(1))
        store.job_failed(torrent_id, "EACCES", at=_at(2))
        store.retry_job(torrent_id, at=_at(3))
        store.job_started(torrent_id, SOURCE, at=_at(4))
        store.job_completed(torrent_id, SOURCE, DEST, TransferMode.COPY, at=_at(5))
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
        store.job_started(torrent_id, SOURCE)
        store.remove_torrents([torrent_id])
        assert store.get_job(torrent_id) is None
        assert store.job_history(torrent_id) == []

    def test_list_jobs_filters_by_status_and_pages(self, store: RuntimeStore) -> None:
        statuses = [samples.status(n) for n in range(25)]
        store.upsert_torrents(statuses)
        for n, status in enumerate(statuses):
            store.job_started(status.id, SOURCE, at=_at(n // 2))
            if n % 3 == 0:
                store.job_failed(status.id, "boom")
        failed = {s.id for n, s in enumerate(statuses) if n % 3 == 0}
        query = JobQuery(statuses={JobStatus.FAILED}, limit=3)
        seen = [j.torrent_id for j in walk(store.list_jobs, query)]
        assert len(seen) == len(set(seen)) and set(seen) == failed
        every = store.list_jobs(JobQuery(limit=100)).items
        assert [JobQuery.key(j) for j in every] == sorted(JobQuery.key(j) for j in every)

    def test_transitions_from_many_threads_keep_each_history_whole(self, store: RuntimeStore) -> None:
        statuses = [samples.status(n) for n in range(8)]
        store.upsert_torrents(statuses)

        def work(torrent_id: uuid.UUID) -> None:
            for _ in range(5):
                store.job_started(torrent_id, SOURCE)
                store.job_failed(torrent_id, "again")
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
