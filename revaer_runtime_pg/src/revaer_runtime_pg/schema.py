"""Table definitions (SQLAlchemy Core) of the current schema revision.

The tables live in a schema named by the ``schema`` setting, so they are
built per schema name. Migrations under ``migrations/`` create exactly these,
indexes and comments included: ``tests/test_pg_migrations.py`` checks that an
Alembic autogenerate against a migrated database finds nothing to change, and
that every index reads the same in PostgreSQL's catalog. A migration freezes
its own copy of what it creates; this module is what the code reads and writes.

The row layouts come from these tables and nowhere else: the column lists
below, the COPY types (:func:`copy_type`), the staging tables (made from the
tables themselves) and how a value becomes a row (:mod:`revaer_runtime_pg.layout`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from revaer_core import AddedVia, JobEvent, JobStatus, TorrentState, TransferMode

#: PostgreSQL enum type names and their labels, in declaration order.
ENUMS: dict[str, tuple[str, ...]] = {
    "torrent_state": tuple(s.value for s in TorrentState),
    "fs_job_status": tuple(s.value for s in JobStatus),
    "transfer_mode": tuple(m.value for m in TransferMode),
    "job_event": tuple(e.value for e in JobEvent),
    "added_via": tuple(v.value for v in AddedVia),
}


def _enum(name: str, schema: str) -> pg.ENUM:
    # Values stay strings on the way out: decoding tolerates labels a newer writer added.
    return pg.ENUM(*ENUMS[name], name=name, schema=schema, create_type=False)


#: How full ``torrents`` fills a page: a flush rewrites every row of it, each new version beside the old one.
FILLFACTOR = 50


def _row_times() -> list[sa.Column[object]]:
    """Bookkeeping columns: when the row was inserted and last changed (kept by a trigger, or set with the change)."""
    return [
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


@attrs.frozen
class Tables:
    """The tables of one schema."""

    schema: str
    metadata: sa.MetaData
    torrents: sa.Table
    torrent_sources: sa.Table
    fs_jobs: sa.Table
    fs_job_history: sa.Table
    writer_fence: sa.Table


@functools.cache
def tables(schema: str) -> Tables:
    """The tables as they stand at the head revision, in ``schema``."""
    metadata = sa.MetaData(schema=schema)
    big = sa.BigInteger
    torrents = sa.Table(
        "torrents",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("state", _enum("torrent_state", schema), nullable=False),
        sa.Column("failure", sa.Text),
        sa.Column("downloaded", big, nullable=False),
        sa.Column("total", big, nullable=False),
        sa.Column("eta_seconds", big),
        sa.Column("download_bps", big, nullable=False),
        sa.Column("upload_bps", big, nullable=False),
        sa.Column("ratio", sa.Float(precision=53), nullable=False),
        sa.Column(
            "files",
            pg.JSONB(none_as_null=True),
            comment="File list as JSON objects; NULL while metadata is unknown, [] for no files",
        ),
        sa.Column("library_path", sa.Text),
        sa.Column("download_dir", sa.Text),
        sa.Column("sequential", sa.Boolean, nullable=False),
        sa.Column("added_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("completed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column(
            "last_updated",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            comment="When Revaer last changed the status (updated_at is when the row changed)",
        ),
        sa.Column(
            "resume_data",
            sa.LargeBinary,
            comment="Engine resume data (opaque bytes); never read by catalog hydration",
        ),
        *_row_times(),
        sa.Column(
            "info_hash",
            sa.Text,
            comment="Info-hash in lower-case hex: the v1 SHA-1 where the torrent has one, else the v2 SHA-256; "
            "NULL until known",
        ),
        sa.Column(
            "paused",
            sa.Boolean,
            nullable=False,
            server_default=sa.false(),
            comment="Paused by the user: the torrent stays paused across restarts until resumed",
        ),
        sa.Column(
            "labels",
            pg.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment="The user's labels, sorted and without repeats",
        ),
        sa.Column("download_limit", big, comment="Download limit in bytes/s chosen by the user; NULL for none"),
        sa.Column("upload_limit", big, comment="Upload limit in bytes/s chosen by the user; NULL for none"),
        sa.CheckConstraint("download_limit >= 0", name="torrents_download_limit_check"),
        sa.CheckConstraint("upload_limit >= 0", name="torrents_upload_limit_check"),
        # Listing: filter by state; keyset order by (added_at, id) and (name, id). No index covers a column a
        # progress write changes (last_updated), and pages keep room: those writes stay on their page (HOT).
        sa.Index("torrents_state_idx", "state"),
        sa.Index("torrents_added_idx", "added_at", "id"),
        sa.Index("torrents_name_idx", sa.text("(coalesce(name, '') COLLATE \"C\")"), "id"),
        comment="Revaer torrent statuses, one row per torrent; written in batches by the daemon",
        postgresql_with={"fillfactor": FILLFACTOR},
    )
    # Apart from ``torrents``: hydration never reads these rows, and a few MiB of metainfo stays out of its pages.
    torrent_sources = sa.Table(
        "torrent_sources",
        metadata,
        sa.Column("torrent_id", sa.Uuid, sa.ForeignKey(torrents.c.id, ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "metainfo",
            sa.LargeBinary,
            comment="The bencoded .torrent as added, byte for byte; NULL when the torrent came from a magnet link",
        ),
        sa.Column("magnet", sa.Text, comment="The magnet link as added; NULL when the torrent came from a .torrent"),
        sa.Column(
            "file_priorities",
            pg.ARRAY(sa.SmallInteger),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment="Priorities (0 skip .. 7 top) asked for at the add, by file index; later files get 4",
        ),
        sa.Column(
            "added_via",
            _enum("added_via", schema),
            nullable=False,
            comment="How the torrent came in: the API, the CLI, the watch folder or an import",
        ),
        sa.Column(
            "added_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            comment="When the torrent was added (created_at is when this row was first written)",
        ),
        *_row_times(),
        sa.CheckConstraint("(metainfo IS NULL) <> (magnet IS NULL)", name="torrent_sources_one_source_check"),
        sa.CheckConstraint(
            "file_priorities <@ ARRAY[0, 1, 2, 3, 4, 5, 6, 7]::smallint[]", name="torrent_sources_priorities_check"
        ),
        comment="The source of each torrent (a .torrent's bytes or a magnet link): what the engine re-adds it from "
        "when it has no resume data; removed with its torrent, never read by catalog hydration",
    )
    fs_jobs = sa.Table(
        "fs_jobs",
        metadata,
        sa.Column("torrent_id", sa.Uuid, sa.ForeignKey(torrents.c.id, ondelete="CASCADE"), primary_key=True),
        sa.Column("status", _enum("fs_job_status", schema), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job_created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("job_updated_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("destination", sa.Text),
        sa.Column("transfer_mode", _enum("transfer_mode", schema)),
        sa.Column("last_error", sa.Text),
        sa.Column(
            "transitions",
            sa.Integer,
            nullable=False,
            comment="Number of history rows: the seq of the latest transition",
        ),
        *_row_times(),
        sa.Index("fs_jobs_status_idx", "status"),
        sa.Index("fs_jobs_created_idx", "job_created_at", "torrent_id"),
        comment="The current FsOps job of each torrent (removed with its torrent)",
    )
    fs_job_history = sa.Table(
        "fs_job_history",
        metadata,
        sa.Column(
            "torrent_id",
            sa.Uuid,
            sa.ForeignKey(fs_jobs.c.torrent_id, ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("event", _enum("job_event", schema), nullable=False),
        sa.Column("status", _enum("fs_job_status", schema), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("destination", sa.Text),
        sa.Column("transfer_mode", _enum("transfer_mode", schema)),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        comment="Every FsOps job transition, append-only: the audit trail of each attempt",
    )
    # One row: the epoch the writer lock's holder bumped, read FOR SHARE by each of its write transactions.
    writer_fence = sa.Table(
        "writer_fence",
        metadata,
        sa.Column(
            "singleton",
            sa.Boolean,
            primary_key=True,
            server_default=sa.true(),
            comment="Always true: the table holds exactly one row",
        ),
        sa.Column(
            "epoch",
            big,
            nullable=False,
            server_default=sa.text("0"),
            comment="Bumped by each daemon that takes the writer lock; its writes land only while it is unchanged",
        ),
        sa.Column(
            "holder",
            sa.Text,
            comment="Who bumped it last, as pg_stat_activity names that daemon (revaer daemon <host>:<pid>)",
        ),
        sa.Column(
            "taken_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            comment="When the writer lock was last taken",
        ),
        sa.CheckConstraint("singleton", name="writer_fence_singleton_check"),
        comment="The writer lock's fencing epoch: one row, checked inside every daemon write transaction",
    )
    return Tables(
        schema=schema,
        metadata=metadata,
        torrents=torrents,
        torrent_sources=torrent_sources,
        fs_jobs=fs_jobs,
        fs_job_history=fs_job_history,
        writer_fence=writer_fence,
    )


#: The schema the module-level layouts below are read from: a column's name, order and type are the same in any.
LAYOUT = tables("revaer_runtime")
#: Row bookkeeping, kept by the server: never written or read as part of a value.
_BOOKKEEPING = frozenset({"created_at", "updated_at"})


def _columns_of(table: sa.Table, *, leaving_out: frozenset[str] = frozenset()) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in _BOOKKEEPING | leaving_out)


#: Columns of a torrent status, in table order: how rows are copied and read. Resume data has hooks of its own.
STATUS_COLUMNS = _columns_of(LAYOUT.torrents, leaving_out=frozenset({"resume_data"}))
#: The columns a progress-only change touches (``update_progress``), id first, in table order.
PROGRESS_COLUMNS = tuple(
    c
    for c in STATUS_COLUMNS
    if c in {"id", "downloaded", "total", "eta_seconds", "download_bps", "upload_bps", "ratio", "last_updated"}
)
#: Columns of a torrent's stored source, in table order.
SOURCE_COLUMNS = _columns_of(LAYOUT.torrent_sources)
#: Columns of an FsOps job, in table order (``transitions`` is the store's own count, not part of a job).
JOB_COLUMNS = _columns_of(LAYOUT.fs_jobs, leaving_out=frozenset({"transitions"}))
#: Columns of a job history row, in table order.
HISTORY_COLUMNS = _columns_of(LAYOUT.fs_job_history)


def copy_type(column: sa.Column[Any]) -> str:
    """What psycopg dumps ``column`` as for binary COPY, which carries no type per field.

    The server reads each field in its column's binary format: an enum's is
    its label (text), and JSONB goes as bytes already in JSONB's binary form
    (``rows.jsonb_binary``).
    """
    kind = column.type
    if isinstance(kind, pg.ARRAY):
        return f"{copy_type(sa.Column(column.name, kind.item_type))}[]"
    if isinstance(kind, sa.DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    for sql_type, name in _COPY_TYPES:
        if isinstance(kind, sql_type):
            return name
    raise TypeError(f"{column.name}: no binary COPY type for {kind!r}; add it to schema._COPY_TYPES")


#: SQLAlchemy types and what they COPY as; subclasses before their bases (an Enum is a String, a BigInteger an Integer).
_COPY_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.Enum, "text"),
    (pg.JSONB, "bytea"),
    (sa.Uuid, "uuid"),
    (sa.BigInteger, "int8"),
    (sa.SmallInteger, "int2"),
    (sa.Integer, "int4"),
    (sa.Float, "float8"),
    (sa.Boolean, "bool"),
    (sa.LargeBinary, "bytea"),
    (sa.Text, "text"),
)


def copy_types(table: sa.Table, names: Sequence[str]) -> tuple[str, ...]:
    """The binary COPY types of ``table``'s columns ``names``, in that order."""
    return tuple(copy_type(table.c[name]) for name in names)
