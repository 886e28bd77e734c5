"""FsOps job transitions in one call each, for tests that set up a job and its history.

FsOps itself builds :class:`~revaer_core.jobs.JobTransition` values and hands
them to :meth:`RuntimeStore.record_job_transition`; these helpers do the same
with a default time of now, so a test reads as the job's story.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from revaer_core.jobs import FsJob, JobEvent, JobTransition, TransferMode
from revaer_core.store import RuntimeStore


def _at(at: datetime | None) -> datetime:
    return at or datetime.now(UTC)


def job_started(store: RuntimeStore, torrent_id: UUID, source: str, *, at: datetime | None = None) -> FsJob | None:
    """FsOps starts on ``source``; ``None`` when nothing is persisted."""
    return store.record_job_transition(
        JobTransition(torrent_id=torrent_id, event=JobEvent.STARTED, at=_at(at), source=source)
    )


def job_completed(
    store: RuntimeStore,
    torrent_id: UUID,
    source: str,
    destination: str,
    transfer_mode: TransferMode,
    *,
    at: datetime | None = None,
) -> FsJob | None:
    """FsOps put ``source`` at ``destination`` by ``transfer_mode``."""
    return store.record_job_transition(
        JobTransition(
            torrent_id=torrent_id,
            event=JobEvent.COMPLETED,
            at=_at(at),
            source=source,
            destination=destination,
            transfer_mode=transfer_mode,
        )
    )


def job_failed(store: RuntimeStore, torrent_id: UUID, error: str, *, at: datetime | None = None) -> FsJob | None:
    """The running job failed with ``error``."""
    return store.record_job_transition(
        JobTransition(torrent_id=torrent_id, event=JobEvent.FAILED, at=_at(at), detail=error)
    )


def job_skipped(
    store: RuntimeStore, torrent_id: UUID, source: str, reason: str, *, at: datetime | None = None
) -> FsJob | None:
    """FsOps had nothing to do for ``source``, for ``reason``."""
    return store.record_job_transition(
        JobTransition(torrent_id=torrent_id, event=JobEvent.SKIPPED, at=_at(at), source=source, detail=reason)
    )
