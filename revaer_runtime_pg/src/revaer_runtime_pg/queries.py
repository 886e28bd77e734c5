"""Queries of the read hooks that take a query (pages of torrents and jobs), in SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from revaer_core import JobQuery, TorrentQuery, TorrentSort
from revaer_runtime_pg.schema import JOB_COLUMNS, STATUS_COLUMNS, Tables


def readable(table: sa.Table, names: Sequence[str]) -> list[sa.ColumnElement[Any]]:
    """``table``'s columns ``names``, enums read as plain text: a label a newer writer added must not fail the read."""
    return [
        sa.type_coerce(table.c[name], sa.Text) if isinstance(table.c[name].type, sa.Enum) else table.c[name]
        for name in names
    ]


def status_columns(tables: Tables) -> list[sa.ColumnElement[Any]]:
    """The columns a status is read from, in :data:`STATUS_COLUMNS` order."""
    return readable(tables.torrents, STATUS_COLUMNS)


def torrent_page(tables: Tables, query: TorrentQuery) -> sa.Select[Any]:
    """The statuses ``query`` selects, in its order, one more than its limit (to tell whether a page follows)."""
    t = tables.torrents
    key: sa.ColumnElement[Any]
    match query.sort:
        case TorrentSort.ADDED:
            key = t.c.added_at
        case TorrentSort.UPDATED:
            key = t.c.last_updated
        case TorrentSort.NAME:  # unnamed first, by code point: what TorrentQuery.key does in Python
            key = sa.func.coalesce(t.c.name, sa.literal_column("''")).collate("C")
    select = sa.select(*status_columns(tables))
    if query.states:
        select = select.where(t.c.state.in_(sorted(s.value for s in query.states)))
    if query.name_contains:
        select = select.where(t.c.name.icontains(query.name_contains, autoescape=True))
    after = query.after_key()
    if after is not None:
        position = sa.tuple_(key, t.c.id)
        cursor = sa.tuple_(sa.literal(after[0]), sa.literal(after[1], sa.Uuid))
        select = select.where(position < cursor if query.descending else position > cursor)
    order = [key.desc(), t.c.id.desc()] if query.descending else [key.asc(), t.c.id.asc()]
    return select.order_by(*order).limit(query.limit + 1)


def job_page(tables: Tables, query: JobQuery) -> sa.Select[Any]:
    """The jobs ``query`` selects, by creation time, one more than its limit."""
    j = tables.fs_jobs
    select = sa.select(*readable(j, JOB_COLUMNS))
    if query.statuses:
        select = select.where(j.c.status.in_(sorted(s.value for s in query.statuses)))
    after = query.after_key()
    if after is not None:
        select = select.where(
            sa.tuple_(j.c.job_created_at, j.c.torrent_id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1]))
        )
    return select.order_by(j.c.job_created_at, j.c.torrent_id).limit(query.limit + 1)


def job_counts(tables: Tables) -> sa.Select[Any]:
    """``(status label, jobs)`` rows, one per status in use: what ``/metrics`` shows, in one query."""
    (status,) = readable(tables.fs_jobs, ["status"])
    return sa.select(status, sa.func.count()).group_by(status)
