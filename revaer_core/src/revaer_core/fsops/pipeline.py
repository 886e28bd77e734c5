"""The runner: the steps in order, each outcome written to the job's journal, resuming where a run stopped."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable

import attrs

from revaer_core.fsops.errors import FsOpsError, describe_os_error
from revaer_core.fsops.journal import check_state
from revaer_core.fsops.meta import JobMeta, MetaFile, MetaStatus
from revaer_core.fsops.policy import FsOpsPolicy
from revaer_core.fsops.request import JobRequest
from revaer_core.fsops.steps import STEPS, JobContext, Skip
from revaer_core.serialize import to_json

log = logging.getLogger(__name__)


class StepFailed(FsOpsError):
    """A step could not finish; the message starts with the step's name and is the job's error."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


@attrs.frozen
class PipelineResult:
    """How a run ended (a failed run raises :class:`StepFailed` instead)."""

    status: MetaStatus  #: completed or skipped
    library_path: str | None  #: where the payload now is in the library (None when skipped)
    steps_run: tuple[str, ...]  #: steps this run executed; empty when the job was already finished
    resumed_from: str | None = None  #: first step run, when earlier ones were done by an earlier run
    reason: str | None = None  #: why the job was skipped


class Pipeline:
    """Runs the FsOps steps for one request under one policy.

    :param progress: called with a step's name just before it runs (FsOps publishes
        ``FsOpsProgress`` from it). An exception that is not an ``Exception``
        (a simulated crash, ``KeyboardInterrupt``) passes straight through and
        leaves the metadata as a crash would.
    """

    def __init__(self, policy: FsOpsPolicy, progress: Callable[[str], object] | None = None) -> None:
        self.policy = policy
        self._progress = progress or (lambda step: None)

    def fingerprint(self, request: JobRequest) -> str:
        """Digest of the request and the policy: metadata written for other inputs is stale."""
        shape = json.dumps([to_json(request), self.policy.fingerprint()], sort_keys=True)
        return hashlib.sha256(shape.encode()).hexdigest()[:24]

    def open(self, request: JobRequest) -> tuple[MetaFile, JobMeta]:
        """The job's metadata file and document: the stored one to resume, or a fresh one."""
        meta_file = MetaFile(self.policy.journal_dir, request.torrent_id)
        fingerprint = self.fingerprint(request)
        meta = meta_file.load(fingerprint)
        refused = None if meta is None else check_state(meta, self.policy)
        if refused is not None:
            meta_file.move_aside("refused", refused)
            meta = None
        return meta_file, meta or JobMeta(torrent_id=request.torrent_id, fingerprint=fingerprint, request=request)

    def run(self, request: JobRequest, meta_file: MetaFile, meta: JobMeta) -> PipelineResult:
        """Run every step not yet done; a finished document is returned as it is, not redone."""
        if meta.status.finished:
            return PipelineResult(status=meta.status, library_path=meta.destination, steps_run=(), reason=meta.error)
        ctx = JobContext(self.policy, request, meta, checkpoint=lambda: meta_file.save(meta))
        meta.status, meta.error = MetaStatus.RUNNING, None
        meta.runs += 1
        self._save(meta_file, meta, "metadata")
        ran: list[str] = []
        for name, step in STEPS:
            if meta.done(name):
                continue
            self._progress(name)
            ran.append(name)
            try:
                step(ctx)
            except Skip as skip:
                meta.mark(name, "skipped", str(skip))
                meta.status, meta.error = MetaStatus.SKIPPED, str(skip)
                shutil.rmtree(ctx.work_dir, ignore_errors=True)
                self._save(meta_file, meta, name)
                return PipelineResult(MetaStatus.SKIPPED, None, tuple(ran), self._resumed(ran), str(skip))
            except Exception as exc:
                raise self._failed(meta_file, meta, name, exc) from exc
            meta.mark(name, "done")
            self._save(meta_file, meta, name)
        meta.status, meta.destination = MetaStatus.COMPLETED, ctx.state["library_path"]
        self._save(meta_file, meta, "finalise")
        return PipelineResult(MetaStatus.COMPLETED, meta.destination, tuple(ran), self._resumed(ran))

    @staticmethod
    def _resumed(ran: list[str]) -> str | None:
        return ran[0] if ran and ran[0] != STEPS[0][0] else None

    def _save(self, meta_file: MetaFile, meta: JobMeta, step: str) -> None:
        try:
            meta_file.save(meta)
        except OSError as exc:
            raise StepFailed(step, str(describe_os_error(exc, meta_file.path, "writing metadata"))) from None

    def _failed(self, meta_file: MetaFile, meta: JobMeta, step: str, exc: Exception) -> StepFailed:
        if isinstance(exc, StepFailed):
            return exc
        if isinstance(exc, FsOpsError):
            message = str(exc)
        elif isinstance(exc, OSError):
            message = str(describe_os_error(exc, exc.filename or self.policy.library_root, step.replace("_", " ")))
        else:
            log.error("FsOps step %s of torrent %s raised unexpectedly", step, meta.torrent_id, exc_info=exc)
            message = f"unexpected error: {exc!r}"
        meta.mark(step, "failed", message)
        meta.status, meta.error = MetaStatus.FAILED, f"{step}: {message}"
        try:
            meta_file.save(meta)
        except OSError as save_exc:  # the disk may be full: the job still fails with the first error
            log.warning(
                "FsOps of torrent %s: could not record the failure in %s: %s", meta.torrent_id, meta_file.path, save_exc
            )
        return StepFailed(step, message)
