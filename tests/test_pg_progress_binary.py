"""Progress updates go to PostgreSQL as one binary array packed by the store itself, not by psycopg's adapters.

What comes back must be exactly what psycopg would have written: every
integer width, a NULL eta, microseconds, any time zone, sanitised values,
and the last of two updates of one torrent in a batch. The packing follows
the table's columns, so a table of every fixed-width type, each NULL where
it may be, reads back what was packed too.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import psycopg
import pytest
import sqlalchemy as sa

from revaer_core import MAX_BYTES, Progress, Rates, RuntimeStore, TorrentStatus
from revaer_core.contract import samples
from revaer_runtime_pg import binary_rows
from revaer_runtime_pg.layout import Layout

pytestmark = pytest.mark.postgres

INT8_MIN = -(2**63)


@pytest.fixture
def store(pg_store: RuntimeStore) -> RuntimeStore:
    return pg_store


def _moved(n: int, **changes: Any) -> TorrentStatus:
    return attrs.evolve(samples.status(n), **changes)


CASES = [
    ("eta unknown", _moved(1, progress=Progress(downloaded=7, total=9, eta_seconds=None))),
    (
        "widest values",
        _moved(
            2,
            progress=Progress(downloaded=MAX_BYTES, total=MAX_BYTES, eta_seconds=INT8_MIN),
            rates=Rates(download_bps=MAX_BYTES, upload_bps=0, ratio=1e300),
        ),
    ),
    ("negative eta", _moved(3, progress=Progress(downloaded=0, total=0, eta_seconds=-1))),
    (
        "another time zone, microseconds",
        _moved(
            4, last_updated=datetime(2031, 7, 1, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-9, minutes=-30)))
        ),
    ),
    ("before 2000", _moved(5, last_updated=datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC))),
    ("year 2", _moved(6, last_updated=datetime(2, 1, 1, tzinfo=UTC))),
    ("year 9999, kept as it is", _moved(8, last_updated=datetime(9999, 12, 31, 23, 59, tzinfo=UTC))),
    ("a ratio with every bit", _moved(7, rates=Rates(download_bps=1, upload_bps=2, ratio=0.1 + 0.2))),
]


@pytest.mark.parametrize(("label", "moved"), CASES, ids=[label for label, _ in CASES])
def test_progress_reads_back_exactly_as_written(store: RuntimeStore, label: str, moved: TorrentStatus) -> None:
    store.upsert_torrents([attrs.evolve(moved, progress=Progress(downloaded=1, total=2, eta_seconds=3))])
    store.update_progress([moved])
    assert store.get_torrent(moved.id) == moved


def test_a_batch_stores_the_last_update_of_each_torrent(store: RuntimeStore) -> None:
    first = [samples.status(n) for n in range(2_500)]  # an array of some 300 KB
    store.upsert_torrents(first)
    older = [_moved(n, progress=Progress(downloaded=n, total=10_000, eta_seconds=n or None)) for n in range(2_500)]
    newer = [attrs.evolve(s, progress=attrs.evolve(s.progress, downloaded=s.progress.downloaded + 1)) for s in older]
    store.update_progress([*older, *newer[::2]])  # the even torrents twice: their second update wins
    stored = {s.id: s for s in store.load_torrents()}
    assert [stored[s.id] for s in newer[::2]] == newer[::2]
    assert [stored[s.id] for s in older[1::2]] == older[1::2]


def test_progress_beyond_bigint_is_clamped_and_logged(store: RuntimeStore, caplog: pytest.LogCaptureFixture) -> None:
    store.upsert_torrents([samples.status(1), samples.status(2)])
    huge = 2**64 + 5
    poisoned = _moved(
        1,
        progress=Progress(downloaded=huge, total=huge, eta_seconds=-huge),
        last_updated=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # year 0 in UTC: unreadable
    )
    clean = _moved(2, progress=Progress(downloaded=3, total=4, eta_seconds=5))
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        store.update_progress([poisoned, clean])
    stored = store.get_torrent(poisoned.id)
    assert stored is not None
    assert stored.progress == Progress(downloaded=MAX_BYTES, total=MAX_BYTES, eta_seconds=INT8_MIN)
    assert stored.last_updated == datetime.min.replace(tzinfo=UTC)
    assert store.get_torrent(clean.id) == clean
    assert any(str(poisoned.id) in r.getMessage() and "BIGINT" in r.getMessage() for r in caplog.records)


@attrs.frozen
class Reading:
    """A value with a field of every fixed-width type, four of them optional."""

    id: uuid.UUID
    small: int | None
    count: int
    big: int | None
    flag: bool | None
    share: float
    at: datetime | None


def _readings_table(schema: str) -> sa.Table:
    return sa.Table(
        "readings",
        sa.MetaData(schema=schema),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("small", sa.SmallInteger),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("big", sa.BigInteger),
        sa.Column("flag", sa.Boolean),
        sa.Column("share", sa.Float(precision=53), nullable=False),
        sa.Column("at", sa.TIMESTAMP(timezone=True)),
    )


def test_a_record_of_every_fixed_width_type_reads_back_with_each_null(
    pg_url: str, pg_schema: str, pg_engine: sa.Engine
) -> None:
    table = _readings_table(pg_schema)
    record = binary_rows.Record.of(Layout.of(table, [c.name for c in table.columns], lambda column: column))
    at = datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=3)))
    full = Reading(uuid.uuid4(), -(2**15), 2**31 - 1, -(2**63), True, -0.5, at)
    optional = ("small", "big", "flag", "at")
    null: dict[str, Any] = dict.fromkeys(optional)
    readings = [
        attrs.evolve(full, id=uuid.uuid4(), **{name: null[name] for name in left_out})
        for n in range(len(optional) + 1)
        for left_out in itertools.combinations(optional, n)
    ]
    with pg_engine.begin() as made:
        made.execute(sa.schema.CreateSchema(pg_schema))
        table.create(made)
    with psycopg.connect(pg_url) as connection, connection.cursor() as cursor:
        row_type = cursor.execute(f"SELECT '\"{pg_schema}\".readings'::regtype::oid").fetchone()[0]  # type: ignore[index]
        packed = binary_rows.array(row_type, [record.record(r, []) for r in readings])
        cursor.execute(
            f'INSERT INTO "{pg_schema}".readings SELECT * FROM unnest(%b::"{pg_schema}".readings[])', [packed]
        )
        cursor.execute(f'SELECT id, small, count, big, flag, share, at FROM "{pg_schema}".readings')
        stored = {row[0]: Reading(*row) for row in cursor.fetchall()}
    assert len(readings) == 16
    assert [stored[r.id] for r in readings] == readings


def test_a_column_that_is_not_fixed_width_is_refused_by_name() -> None:
    table = sa.Table("named", sa.MetaData(), sa.Column("id", sa.Uuid, primary_key=True), sa.Column("label", sa.Text))
    with pytest.raises(TypeError, match=r"named\.label \(text\) is not a fixed-width field"):
        binary_rows.Record.of(Layout.of(table, ["id", "label"], lambda column: column))
