"""Progress flushes rewrite rows in place (HOT): no index covers what they change, and pages keep room for it.

A flush rewrites the progress of every downloading torrent. An update that
changes an indexed column, or finds no room on its page, writes a new entry
into every index of ``torrents``: that was the writer's time at 10,000
torrents. The counts are PostgreSQL's own, for the store's own statement,
read inside the transaction that ran it.
"""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from revaer_core import RuntimeStore, TorrentStatus
from revaer_core.contract import samples
from revaer_runtime_pg import batches, binary_rows
from revaer_runtime_pg.statements import Statements

pytestmark = pytest.mark.postgres

TORRENTS = 500


def _flush(k: int) -> list[TorrentStatus]:
    return [samples.progressed(samples.status(n), k * 1000 + n, last_updated=samples.EPOCH + timedelta(seconds=k))
            for n in range(TORRENTS)]  # fmt: skip


def test_every_progress_write_of_a_flush_is_a_heap_only_update(pg_store: RuntimeStore, pg_url: str,
                                                               pg_schema: str) -> None:  # fmt: skip
    """Even the first flush after the adds, with nothing prunable (an old snapshot held open): the room is there."""
    pg_store.upsert_torrents([samples.status(n) for n in range(TORRENTS)])
    progress = Statements.for_schema(pg_schema).progress
    records = batches.progress_records(_flush(1))
    table = f'"{pg_schema}".torrents'
    with psycopg.connect(pg_url) as held, psycopg.connect(pg_url) as connection:
        held.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        held.execute(f"SELECT count(*) FROM {table}")  # its snapshot keeps every version alive until the end
        connection.execute(progress.create)  # one transaction: its own counts, nothing asynchronous
        row_type = connection.execute(progress.row_type).fetchone()[0]  # type: ignore[index]
        rows = {"rows": binary_rows.array(row_type, records)}
        assert connection.execute(progress.apply, rows).rowcount == TORRENTS
        counts = connection.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            (table, table),
        ).fetchone()
    count = len(records)
    assert counts == (count, count) == (TORRENTS, TORRENTS)
    for k in range(2, 5):  # and the flushes after it land as well
        pg_store.update_progress(_flush(k))
    assert pg_store.get_torrent(samples.status(7).id).progress.downloaded == 4 * 1000 + 7  # type: ignore[union-attr]


def test_a_progress_write_moves_updated_at_without_the_trigger(pg_store: RuntimeStore, pg_url: str,
                                                               pg_schema: str) -> None:  # fmt: skip
    """The progress statement sets ``updated_at`` itself; a write that does not (an operator's) still gets it."""
    status = samples.status(1)
    pg_store.upsert_torrents([status])
    query = f'SELECT updated_at FROM "{pg_schema}".torrents WHERE id = %s'
    with psycopg.connect(pg_url, autocommit=True) as connection:
        stamps = [connection.execute(query, (status.id,)).fetchone()]
        time.sleep(0.01)
        pg_store.update_progress([samples.progressed(status, 5)])
        stamps.append(connection.execute(query, (status.id,)).fetchone())
        time.sleep(0.01)
        connection.execute(f'UPDATE "{pg_schema}".torrents SET name = %s WHERE id = %s', ("renamed", status.id))
        stamps.append(connection.execute(query, (status.id,)).fetchone())
    assert stamps[0] is not None and stamps[1] is not None and stamps[2] is not None
    assert stamps[0][0] < stamps[1][0] < stamps[2][0]
