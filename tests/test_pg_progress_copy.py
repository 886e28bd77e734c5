"""Progress updates go to PostgreSQL as binary COPY data packed by the store itself, not by psycopg's adapters.

What comes back must be exactly what psycopg would have written: every
integer width, a NULL eta, microseconds, any time zone, sanitised values,
and the last of two updates of one torrent in a batch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from revaer_core import MAX_BYTES, Progress, Rates, RuntimeStore, TorrentStatus
from revaer_core.contract import samples

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
    first = [samples.status(n) for n in range(2_500)]  # more than one COPY buffer of psycopg's
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
