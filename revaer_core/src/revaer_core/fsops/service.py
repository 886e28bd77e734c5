"""FsOpsService: what the orchestrator calls when a torrent completes.

It owns the worker threads (FsOps never blocks an event loop or the bus), one
job per torrent at a time, the job recorder, and the events: ``FsOpsStarted``,
``FsOpsProgress`` per step, then ``FsOpsCompleted`` (carrying the library path,
which the orchestrator folds into the torrent's status) or ``FsOpsFailed``.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import attrs

from revaer_core.backoff import Backoff
from revaer_core.errors import InvalidInput, RevaerError
from revaer_core.events import EventPayload, FsOpsCompleted, FsOpsFailed, FsOpsProgress, FsOpsStarted
from revaer_core.fsops.journal import check_request, check_state
from revaer_core.fsops.meta import JobMeta, MetaFile, MetaStatus
from revaer_core.fsops.pipeline import Pipeline, StepFailed
from revaer_core.fsops.policy import FsOpsPolicy
from revaer_core.fsops.recorder import JobRecorder
from revaer_core.fsops.request import JobRequest
from revaer_core.health import HealthBoard
from revaer_core.jobs import FsJob, JobStatus, JobTransition, TransferMode, TransitionRefused
from revaer_core.query import JobQuery, walk
from revaer_core.settings import FsOpsSettings
from revaer_core.status import TorrentStatus
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

Publish = Callable[[EventPayload], object]
LibraryPathCallback = Callable[[UUID, str], object]


@attrs.frozen
class FsOpsOutcome:
    """How one FsOps job ended; the value of the future :meth:`FsOpsService.submit` returns."""

    torrent_id: UUID
    status: JobStatus  #: ``moved``, ``failed`` or ``skipped``
    library_path: str | None = None  #: where the payload is in the library (``moved`` only)
    transfer_mode: TransferMode | None = None
    error: str | None = None  #: the failure message, or why the job was skipped
    steps_run: tuple[str, ...] = ()
    resumed_from: str | None = None  #: the first step run, when an interrupted run was resumed
    already_done: bool = False  #: the job had finished before; nothing was redone


class FsOpsService:
    """Runs FsOps jobs on its own threads and records them in the JobStore.

    :param settings: the ``[fsops]`` settings; with ``enabled = false`` every
        submission ends ``skipped`` at once and nothing is recorded.
    :param store: the runtime store (the no-store facade is fine).
    :param journal_dir: where each job's journal is kept; the daemon passes
        ``<data_dir>/fsops`` (:func:`revaer_core.fsops.policy.journal_dir_of`), a
        folder no torrent writes into.
    :param source_roots: the folders torrents are saved to; a job resumed from
        its journal must have its source inside one (empty: not checked).
    :param publish: where events go, normally ``EventBus.publish``.
    :param health: the runtime's health board (``runtime_store`` degrades while job writes fail).
    :param on_library_path: called as ``(torrent_id, library_path)`` from a worker thread
        when a job ends with the payload in the library (also when it had already).
    :param tracked: whether a torrent is still in the catalog (the daemon passes the
        catalog's ``__contains__``): a job write that failed for a removed torrent is dropped.
    :raises ConfigError: when the settings cannot be used, naming ``fsops.<key>``.
    """

    def __init__(
        self,
        settings: FsOpsSettings,
        store: RuntimeStore,
        *,
        journal_dir: Path,
        source_roots: Sequence[Path] = (),
        publish: Publish | None = None,
        health: HealthBoard | None = None,
        on_library_path: LibraryPathCallback | None = None,
        backoff: Backoff | None = None,
        tracked: Callable[[UUID], bool] | None = None,
    ) -> None:
        self.policy = FsOpsPolicy.from_settings(settings, journal_dir=journal_dir) if settings.enabled else None
        self._source_roots = tuple(source_roots)
        self._store = store
        self._publish_to = publish
        self.health = health or HealthBoard(publish=publish)
        self._on_library_path = on_library_path
        self.recorder = JobRecorder(store, self.health, backoff=backoff, tracked=tracked)
        self._executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="revaer-fsops")
        self._lock = threading.Lock()
        self._active: dict[UUID, Future[FsOpsOutcome]] = {}
        self._requests: dict[UUID, JobRequest] = {}
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    # -- what callers use ------------------------------------------------------------------

    def on_completed(self, status: TorrentStatus) -> None:
        """The orchestrator's ``on_completed`` hook: start the job and return at once."""
        self.submit(status)

    def submit(self, status: TorrentStatus) -> Future[FsOpsOutcome]:
        """Run the job of a completed torrent on a worker thread.

        A torrent whose job is already queued or running gets that job's future.
        """
        return self.submit_request(JobRequest.from_status(status))

    def submit_request(self, request: JobRequest) -> Future[FsOpsOutcome]:
        """:meth:`submit` for a request built by hand (tests, tools)."""
        if self.policy is None:
            done: Future[FsOpsOutcome] = Future()
            done.set_result(FsOpsOutcome(request.torrent_id, JobStatus.SKIPPED, error="fsops is disabled"))
            return done
        with self._lock:
            if self._closed:
                raise RevaerError("FsOps is shut down; no new job is accepted")
            active = self._active.get(request.torrent_id)
            if active is not None and not active.done():
                return active
            self._requests[request.torrent_id] = request
            future = self._executor.submit(self._run, self.policy, request)
            self._active[request.torrent_id] = future
        return future

    def retry(self, torrent_id: UUID) -> Future[FsOpsOutcome]:
        """Start a new attempt of a failed job (the operator's ``retry``).

        Sets the stored job back to ``pending`` first, then runs it; the run
        resumes at the step that failed.

        :raises InvalidInput: when FsOps is off, the torrent has no known job,
            or the store says the job has not failed.
        """
        if self.policy is None:
            raise InvalidInput("fsops is disabled; enable it in [fsops] to retry jobs")
        request = self._request_for(torrent_id)
        try:
            self.recorder.retry(torrent_id)
        except TransitionRefused as exc:
            raise InvalidInput(str(exc)) from None
        return self.submit_request(request)

    def resume_pending(self) -> list[Future[FsOpsOutcome]]:
        """At startup: run jobs left ``pending`` (a retry asked for while the daemon was down) or
        ``moving`` (the daemon died mid-job), and jobs whose metadata says a run never finished."""
        if self.policy is None:
            return []
        ids: dict[UUID, None] = {}
        try:
            unfinished = JobQuery(statuses={JobStatus.PENDING, JobStatus.MOVING})
            ids.update((job.torrent_id, None) for job in walk(self._store.list_jobs, unfinished))
        except Exception as exc:
            log.warning("FsOps cannot list unfinished jobs from the store (%s); resuming from metadata only", exc)
        self._warn_of_legacy_journal(self.policy)
        for path in sorted(self.policy.journal_dir.glob("*.meta.json")):
            meta = _read_meta(path)
            if meta is not None and meta.status is MetaStatus.RUNNING:
                ids.setdefault(meta.torrent_id, None)
        futures = []
        for torrent_id in ids:
            try:
                request = self._request_for(torrent_id)
            except InvalidInput:
                log.warning("FsOps job of torrent %s is unfinished but its source is unknown; left alone", torrent_id)
                continue
            futures.append(self.submit_request(request))
        if futures:
            log.info("FsOps resumes %d unfinished job(s)", len(futures))
        return futures

    def close(self, deadline: float = 10.0) -> list[JobTransition]:
        """Stop taking jobs, wait up to ``deadline`` seconds for running ones and queued store writes.

        :returns: job transitions that never reached the store (logged too);
            an interrupted job resumes from its metadata on the next start.
        """
        end = time.monotonic() + deadline
        with self._lock:
            self._closed = True
            running = list(self._active.values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        concurrent.futures.wait(running, timeout=deadline)
        return self.recorder.close(max(0.0, end - time.monotonic()))

    # -- one job -------------------------------------------------------------------------------

    def _publish(self, payload: EventPayload) -> None:
        if self._publish_to is None:
            return
        try:
            self._publish_to(payload)
        except Exception:
            log.exception("publishing %s for torrent %s failed", payload.kind, getattr(payload, "torrent_id", "?"))

    def _run(self, policy: FsOpsPolicy, request: JobRequest) -> FsOpsOutcome:
        tid = request.torrent_id
        pipeline = Pipeline(policy, progress=lambda step: self._publish(FsOpsProgress(torrent_id=tid, step=step)))
        try:
            meta_file, meta = pipeline.open(request)
        except OSError as exc:
            self.recorder.started(tid, str(request.source))
            return self._fail(request, f"metadata: cannot read {policy.journal_dir}: {exc}")
        if meta.status.finished:
            return self._already_done(request, meta)
        readable, job = self._read_job(tid)
        if readable and job is not None and job.status.finished:
            log.info("FsOps job of torrent %s is %s in the store; not redone", tid, job.status)
            return self._finished(FsOpsOutcome(tid, job.status, job.destination, job.transfer_mode, already_done=True))
        self.recorder.started(tid, str(request.source))
        self._publish(FsOpsStarted(torrent_id=tid))
        try:
            result = pipeline.run(request, meta_file, meta)
        except StepFailed as exc:
            return self._fail(request, str(exc))
        except Exception as exc:  # a bug: still a failed job, never a dead worker
            log.exception("FsOps job of torrent %s raised unexpectedly", tid)
            return self._fail(request, f"unexpected error: {exc!r}")
        source = str(request.source)
        if result.status is MetaStatus.SKIPPED:
            reason = result.reason or "nothing to transfer"
            self.recorder.skipped(tid, source, reason)
            outcome = FsOpsOutcome(tid, JobStatus.SKIPPED, error=reason, steps_run=result.steps_run)
        else:
            assert result.library_path is not None
            self.recorder.completed(tid, source, result.library_path, policy.transfer_mode)
            outcome = FsOpsOutcome(
                tid,
                JobStatus.MOVED,
                result.library_path,
                policy.transfer_mode,
                steps_run=result.steps_run,
                resumed_from=result.resumed_from,
            )
        return self._finished(outcome)

    def _already_done(self, request: JobRequest, meta: JobMeta) -> FsOpsOutcome:
        """The metadata says the job finished: redo nothing, but make sure the store knows."""
        assert self.policy is not None
        tid, source, mode = request.torrent_id, str(request.source), self.policy.transfer_mode
        readable, job = self._read_job(tid)
        status = JobStatus.MOVED if meta.status is MetaStatus.COMPLETED else JobStatus.SKIPPED
        if readable and self._store.persistent and (job is None or job.status is not status):
            log.info("FsOps job of torrent %s finished before the store heard of it; recording it now", tid)
            if job is None or job.status is JobStatus.PENDING:
                self.recorder.started(tid, source)
            if status is JobStatus.MOVED:
                self.recorder.completed(tid, source, meta.destination or "", mode)
            else:
                self.recorder.skipped(tid, source, meta.error or "nothing to transfer")
        if status is JobStatus.MOVED:
            return self._finished(FsOpsOutcome(tid, status, meta.destination, mode, already_done=True))
        return self._finished(FsOpsOutcome(tid, status, error=meta.error, already_done=True))

    def _finished(self, outcome: FsOpsOutcome) -> FsOpsOutcome:
        self._publish(FsOpsCompleted(torrent_id=outcome.torrent_id, destination=outcome.library_path))
        if outcome.library_path is not None and self._on_library_path is not None:
            try:
                self._on_library_path(outcome.torrent_id, outcome.library_path)
            except Exception:
                log.exception("library path callback failed for torrent %s", outcome.torrent_id)
        return outcome

    def _fail(self, request: JobRequest, message: str) -> FsOpsOutcome:
        log.warning("FsOps job of torrent %s failed: %s", request.torrent_id, message)
        self.recorder.failed(request.torrent_id, message)
        self._publish(FsOpsFailed(torrent_id=request.torrent_id, message=message))
        return FsOpsOutcome(request.torrent_id, JobStatus.FAILED, error=message)

    # -- lookups ---------------------------------------------------------------------------------

    def _read_job(self, torrent_id: UUID) -> tuple[bool, FsJob | None]:
        """(whether the store answered, the stored job)."""
        try:
            return True, self._store.get_job(torrent_id)
        except Exception as exc:
            log.warning("FsOps cannot read the job of torrent %s from the store: %s", torrent_id, exc)
            return False, None

    def _request_for(self, torrent_id: UUID) -> JobRequest:
        """What to run for a torrent known only by id: this process's last request, else the journal's
        (which resumes exactly) once :mod:`revaer_core.fsops.journal` accepts it, else the stored one.

        Without a store, or while it cannot be read, a journal is checked against the folders only:
        it lies in the data dir, which is the daemon's own."""
        with self._lock:
            known = self._requests.get(torrent_id)
        if known is not None:
            return known
        assert self.policy is not None
        stored, answered = self._stored_request(torrent_id)
        meta_file = MetaFile(self.policy.journal_dir, torrent_id)
        meta = _read_meta(meta_file.path)
        if meta is not None and meta.torrent_id == torrent_id:
            refused = check_request(
                meta, stored=stored, store_answered=answered, source_roots=self._source_roots
            ) or check_state(meta, self.policy)
            if refused is None:
                return meta.request
            then = "the stored job runs afresh" if stored is not None else "nothing is copied or moved"
            meta_file.move_aside("refused", refused, consequence=then)
        if stored is not None:
            return stored
        raise InvalidInput(f"no FsOps job is known for torrent {torrent_id}")

    def _stored_request(self, torrent_id: UUID) -> tuple[JobRequest | None, bool]:
        """(the request the store's torrent or job gives, whether a persistent store answered)."""
        try:
            status = self._store.get_torrent(torrent_id)
            if status is not None:
                return JobRequest.from_status(status), self._store.persistent
            job = self._store.get_job(torrent_id)
            if job is not None and job.source:
                return JobRequest.from_source(torrent_id, job.source), self._store.persistent
        except Exception as exc:
            log.warning("FsOps cannot read torrent %s from the store: %s", torrent_id, exc)
            return None, False
        return None, self._store.persistent

    @staticmethod
    def _warn_of_legacy_journal(policy: FsOpsPolicy) -> None:
        """Journals in ``<library_root>/.revaer`` (earlier versions) are ignored: a torrent could have written them."""
        try:
            found = sorted(policy.legacy_journal_dir.glob("*.meta.json"))
        except OSError:
            return
        if found:
            log.warning(
                "FsOps ignores %d job journal(s) in %s, where earlier versions kept them and a torrent could "
                "have written them; unfinished jobs the store lists run afresh. Remove those files once checked",
                len(found),
                policy.legacy_journal_dir,
            )


def _read_meta(path: object) -> JobMeta | None:
    """A metadata document if ``path`` holds a readable one (no moving aside: this is a lookup)."""
    try:
        with open(str(path), "rb") as handle:
            return JobMeta.from_json(json.loads(handle.read()))
    except (OSError, ValueError):
        return None
