"""Recording an FsOps job transition: the job row locked, the transition applied, job and history written together."""

from __future__ import annotations

import logging

import attrs
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from revaer_core import FsJob, JobTransition, StoreUnavailable, apply_transition, history_entry
from revaer_runtime_pg import rows, sanitize
from revaer_runtime_pg.connection import Connected
from revaer_runtime_pg.queries import readable
from revaer_runtime_pg.schema import JOB_COLUMNS
from revaer_runtime_pg.transactions import faults, writing

log = logging.getLogger(__name__)

_FIRST_INSERT_RETRIES = 3


class _LostRace(Exception):
    """Another transaction created the torrent's job first: read it again and apply on top."""


def record_transition(db: Connected, transition: JobTransition) -> FsJob:
    """Record ``transition`` (texts sanitised), retrying a first start another transaction won."""
    transition = storable(transition)
    for _ in range(_FIRST_INSERT_RETRIES):
        with faults(db):
            try:
                return _record(db, transition)
            except _LostRace:
                continue
            except (sa.exc.IntegrityError, psycopg.IntegrityError) as exc:
                orig = getattr(exc, "orig", None) or exc
                if isinstance(orig, psycopg.errors.ForeignKeyViolation):
                    raise StoreUnavailable(
                        f"torrent {transition.torrent_id} is not stored (yet): its FsOps job is recorded once "
                        "its status is"
                    ) from None
                raise
    raise StoreUnavailable(f"torrent {transition.torrent_id}: job kept changing under a first start; retry")


def _record(db: Connected, transition: JobTransition) -> FsJob:
    """One transaction: lock the job row, apply the transition, write the job and its history row."""
    tables = db.tables
    j, h = tables.fs_jobs, tables.fs_job_history
    lookup = (
        sa.select(*readable(j, JOB_COLUMNS), j.c.transitions)
        .where(j.c.torrent_id == transition.torrent_id)
        .with_for_update()
    )
    with writing(db) as connection:
        row = connection.execute(lookup).first()
        current = None if row is None else rows.job_from_row(row[: len(JOB_COLUMNS)])
        job = apply_transition(current, transition)  # TransitionRefused rolls back: nothing recorded
        seq = (0 if row is None else row.transitions) + 1
        values = {
            "status": job.status.value,
            "source": job.source,
            "attempt": job.attempt,
            "job_created_at": job.created_at,
            "job_updated_at": job.updated_at,
            "destination": job.destination,
            "transfer_mode": None if job.transfer_mode is None else job.transfer_mode.value,
            "last_error": job.last_error,
            "transitions": seq,
        }
        if row is None:
            insert = (
                pg.insert(j)
                .values(torrent_id=job.torrent_id, **values)
                .on_conflict_do_nothing(index_elements=[j.c.torrent_id])
                .returning(j.c.torrent_id)  # rowcount is -1 here (SQLAlchemy 2.1): a returned row says it was ours
            )
            if connection.execute(insert).first() is None:
                raise _LostRace
        else:
            connection.execute(j.update().where(j.c.torrent_id == job.torrent_id).values(**values))
        entry = history_entry(job, transition, seq)
        connection.execute(
            h.insert().values(
                torrent_id=entry.torrent_id,
                seq=entry.seq,
                event=entry.event.value,
                status=entry.status.value,
                attempt=entry.attempt,
                at=entry.at,
                source=entry.source,
                destination=entry.destination,
                transfer_mode=None if entry.transfer_mode is None else entry.transfer_mode.value,
                detail=entry.detail,
            )
        )
    return job


def storable(transition: JobTransition) -> JobTransition:
    """``transition`` with its texts made storable; a change is logged with the torrent id."""
    problems: list[str] = []
    cleaned = attrs.evolve(
        transition,
        source=sanitize.optional_text(transition.source, "job source", problems),
        destination=sanitize.optional_text(transition.destination, "job destination", problems),
        detail=sanitize.optional_text(transition.detail, "job detail", problems),
    )
    if not problems:
        return transition
    log.warning("torrent %s: job transition stored sanitised: %s", transition.torrent_id, "; ".join(problems))
    return cleaned
