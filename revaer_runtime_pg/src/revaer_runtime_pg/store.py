"""The PostgreSQL runtime store: every StoreLifecycle, TorrentStore and JobStore hook, each a few lines.

What they stand on lives beside them: :mod:`~revaer_runtime_pg.connection`
opens the database, :mod:`~revaer_runtime_pg.transactions` fences a daemon's
writes, :mod:`~revaer_runtime_pg.statements` composes the hot paths' SQL,
:mod:`~revaer_runtime_pg.batches` COPYs batches, :mod:`~revaer_runtime_pg.loaders`
hydrates, :mod:`~revaer_runtime_pg.queries` pages, :mod:`~revaer_runtime_pg.jobs`
records FsOps transitions and :mod:`~revaer_runtime_pg.health` answers health.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from revaer_core import (
    Capability,
    FsJob,
    JobHistoryEntry,
    JobQuery,
    JobStatus,
    JobTransition,
    Page,
    StoredSource,
    StoreHealth,
    StoreRole,
    StoreUnavailable,
    TorrentQuery,
    TorrentStatus,
    hookimpl,
    page_of,
)
from revaer_runtime_pg import batches, database, health, jobs, loaders, queries, rows
from revaer_runtime_pg.connection import Connected, close_database, open_database
from revaer_runtime_pg.options import parse_options
from revaer_runtime_pg.queries import readable
from revaer_runtime_pg.schema import HISTORY_COLUMNS, JOB_COLUMNS
from revaer_runtime_pg.transactions import faults, writing

log = logging.getLogger(__name__)


class PostgresStore:
    """Runtime store on PostgreSQL: the ``postgres`` backend (``revaer.runtime`` entry point)."""

    def __init__(self) -> None:
        self._db: Connected | None = None
        self._close_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    @hookimpl
    def store_configure(self, options: Mapping[str, Any], data_dir: Path, role: StoreRole) -> None:
        self._db = open_database(parse_options(options), data_dir, role)
        log.info("runtime store: PostgreSQL at %s, schema %r", database.where(self._db.dsn), self._db.options.schema)

    @hookimpl
    def runtime_commands(self, options: Mapping[str, Any], data_dir: Path) -> Iterable[click.Command]:
        from revaer_runtime_pg.commands import all_commands  # the CLI modules load only when the CLI asks

        return all_commands(options, data_dir)

    @hookimpl
    def store_capabilities(self) -> Iterable[str]:
        return {Capability.DURABLE, Capability.RESUME_DATA, Capability.SOURCES, Capability.SHARED}

    @hookimpl
    def store_health(self) -> StoreHealth:
        return health.health(self._db)

    @hookimpl
    def store_close(self) -> None:
        with self._close_lock:
            db, self._db = self._db, None
        if db is not None:
            close_database(db)

    @property
    def _database(self) -> Connected:
        db = self._db
        if db is None:
            raise StoreUnavailable("the PostgreSQL runtime store is closed (or was never configured)")
        return db

    # -- torrents: writes ---------------------------------------------------------------------

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID] | None:
        batch, sanitised = batches.storable_rows(statuses, rows.status_row)
        if not batch:
            return None
        db = self._database
        with faults(db):
            sanitised.extend(batches.write_batch(db, db.statements.upsert, list(batch.values()), "statuses"))
        return sanitised or None

    @hookimpl
    def update_progress(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        return self.prepare_progress(statuses)()

    @hookimpl
    def prepare_progress(self, statuses: Iterable[TorrentStatus]) -> Callable[[], Sequence[UUID]]:
        """Encode now, as binary array elements (bytes, which hold no status); write when called."""
        records = batches.progress_records(statuses)

        def write() -> Sequence[UUID]:
            if not records:
                return []
            db = self._database
            with faults(db):
                return batches.unnested(db, db.statements.progress, records)

        return write

    @hookimpl
    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        batch, _ = batches.storable_rows(sources, rows.source_row)
        if batch:
            db = self._database
            with faults(db):
                batches.write_batch(db, db.statements.save_sources, list(batch.values()), "sources")

    @hookimpl
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        db = self._database
        t = db.tables.torrents
        with faults(db), writing(db) as connection:
            connection.execute(t.delete().where(t.c.id == sa.any_(sa.literal(list(torrent_ids), pg.ARRAY(sa.Uuid)))))

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        db = self._database
        t = db.tables.torrents
        with faults(db), writing(db) as connection:
            connection.execute(t.update().where(t.c.id == torrent_id).values(resume_data=bytes(data)))

    @hookimpl
    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """One COPY and one UPDATE for the whole batch; data of torrents not stored matches no row."""
        latest = {torrent_id: bytes(data) for torrent_id, data in items}
        if latest:
            db = self._database
            with faults(db):
                batches.staged(db, db.statements.save_resume, latest.items())

    # -- torrents: reads ----------------------------------------------------------------------

    @hookimpl
    def load_torrents(self) -> Iterable[TorrentStatus]:
        db = self._database
        with faults(db):
            return loaders.statuses(db)

    def _rows(self, query: sa.Select[Any]) -> list[Sequence[Any]]:
        """Every row ``query`` selects, read on a pooled connection; connection faults as StoreUnavailable."""
        db = self._database
        with faults(db), db.engine.connect() as connection:
            return list(connection.execute(query))

    @hookimpl
    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        tables = self._database.tables
        found = self._rows(sa.select(*queries.status_columns(tables)).where(tables.torrents.c.id == torrent_id))
        return rows.status_from_row(found[0]) if found else None

    @hookimpl
    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        found = self._rows(queries.torrent_page(self._database.tables, query))
        return page_of([rows.status_from_row(row) for row in found], query.limit, query.cursor_of)

    @hookimpl
    def load_resume_data(self) -> Mapping[UUID, bytes]:
        db = self._database
        with faults(db):
            return loaders.resume_data(db)

    @hookimpl
    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        db = self._database
        with faults(db):
            return loaders.sources(db)

    # -- jobs ---------------------------------------------------------------------------------

    @hookimpl
    def record_job_transition(self, transition: JobTransition) -> FsJob:
        return jobs.record_transition(self._database, transition)

    @hookimpl
    def get_job(self, torrent_id: UUID) -> FsJob | None:
        j = self._database.tables.fs_jobs
        found = self._rows(sa.select(*readable(j, JOB_COLUMNS)).where(j.c.torrent_id == torrent_id))
        return rows.job_from_row(found[0]) if found else None

    @hookimpl
    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        found = self._rows(queries.job_page(self._database.tables, query))
        return page_of([rows.job_from_row(row) for row in found], query.limit, JobQuery.cursor_of)

    @hookimpl
    def count_jobs(self) -> Mapping[JobStatus, int]:
        counts: Counter[JobStatus] = Counter()
        for label, count in self._rows(queries.job_counts(self._database.tables)):
            counts[rows.job_status_of(label)] += count
        return counts

    @hookimpl
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        h = self._database.tables.fs_job_history
        query = sa.select(*readable(h, HISTORY_COLUMNS)).where(h.c.torrent_id == torrent_id).order_by(h.c.seq)
        entries = [rows.history_from_row(row) for row in self._rows(query)]
        return tuple(e for e in entries if e is not None)
