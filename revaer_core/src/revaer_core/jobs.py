"""FsOps jobs: one current job per torrent, and the audit trail of its transitions.

The job state machine lives here, in :func:`apply_transition`, so that every
JobStore backend enforces the same rules (a finished job is not reopened by a
duplicate start; only an explicit retry reopens a failed one).
"""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

import attrs


class JobStatus(enum.StrEnum):
    """Where an FsOps job stands."""

    PENDING = "pending"
    MOVING = "moving"
    MOVED = "moved"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        """A finished job is only reopened by an explicit retry, never by a start."""
        return self in (JobStatus.MOVED, JobStatus.SKIPPED)


class TransferMode(enum.StrEnum):
    """How FsOps puts a payload into the library."""

    COPY = "copy"
    MOVE = "move"
    HARDLINK = "hardlink"


class JobEvent(enum.StrEnum):
    """The transitions a job goes through; each one is a row of the job's history."""

    RETRY = "retry"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


@attrs.frozen
class FsJob:
    """The current state of the FsOps job of one torrent."""

    torrent_id: UUID
    status: JobStatus
    source: str
    attempt: int
    created_at: datetime
    updated_at: datetime
    destination: str | None = None
    transfer_mode: TransferMode | None = None
    last_error: str | None = None


@attrs.frozen
class JobTransition:
    """A request to move a job on, as FsOps (or an operator's retry) makes it.

    ``detail`` is the error of a failure or the reason of a skip.
    """

    torrent_id: UUID
    event: JobEvent
    at: datetime
    source: str | None = None
    destination: str | None = None
    transfer_mode: TransferMode | None = None
    detail: str | None = None


@attrs.frozen
class JobHistoryEntry:
    """One applied transition of a job: the audit trail an operator reads."""

    torrent_id: UUID
    seq: int  #: 1, 2, 3... per torrent, in the order the transitions were applied
    event: JobEvent
    status: JobStatus  #: the job's status after the transition
    attempt: int
    at: datetime
    source: str | None = None
    destination: str | None = None
    transfer_mode: TransferMode | None = None
    detail: str | None = None


class TransitionRefused(Exception):
    """The transition does not apply to the job as it stands; nothing was recorded."""


def apply_transition(current: FsJob | None, transition: JobTransition) -> FsJob:
    """The job after ``transition``, or :class:`TransitionRefused`.

    - ``started`` opens attempt ``n + 1`` in status ``moving``; refused on a finished job.
    - ``completed`` sets ``moved`` with destination and transfer mode.
    - ``failed`` sets ``failed`` and keeps the error in ``last_error``.
    - ``skipped`` sets ``skipped`` (nothing to move, by policy).
    - ``retry`` sets a failed job back to ``pending``; refused on any other status.
    """
    t = transition
    if current is None:
        if t.event is not JobEvent.STARTED and t.event is not JobEvent.SKIPPED:
            raise TransitionRefused(f"no FsOps job exists for torrent {t.torrent_id}")
        current = FsJob(
            torrent_id=t.torrent_id,
            status=JobStatus.PENDING,
            source=t.source or "",
            attempt=0,
            created_at=t.at,
            updated_at=t.at,
        )
    match t.event:
        case JobEvent.STARTED:
            if current.status.finished:
                raise TransitionRefused(f"job of torrent {t.torrent_id} is {current.status}; retry it to run it again")
            return attrs.evolve(
                current,
                status=JobStatus.MOVING,
                source=t.source or current.source,
                attempt=current.attempt + 1,
                last_error=None,
                updated_at=t.at,
            )
        case JobEvent.COMPLETED:
            return attrs.evolve(
                current,
                status=JobStatus.MOVED,
                source=t.source or current.source,
                destination=t.destination,
                transfer_mode=t.transfer_mode,
                last_error=None,
                updated_at=t.at,
            )
        case JobEvent.FAILED:
            return attrs.evolve(current, status=JobStatus.FAILED, last_error=t.detail, updated_at=t.at)
        case JobEvent.SKIPPED:
            return attrs.evolve(current, status=JobStatus.SKIPPED, last_error=None, updated_at=t.at)
        case JobEvent.RETRY:
            if current.status is not JobStatus.FAILED:
                raise TransitionRefused(
                    f"job of torrent {t.torrent_id} is {current.status}; only a failed job can be retried"
                )
            return attrs.evolve(current, status=JobStatus.PENDING, updated_at=t.at)


def history_entry(job: FsJob, transition: JobTransition, seq: int) -> JobHistoryEntry:
    """The history row that records ``transition`` having produced ``job``."""
    return JobHistoryEntry(
        torrent_id=job.torrent_id,
        seq=seq,
        event=transition.event,
        status=job.status,
        attempt=job.attempt,
        at=transition.at,
        source=job.source,
        destination=transition.destination,
        transfer_mode=transition.transfer_mode,
        detail=transition.detail,
    )
