"""Cursors: opaque, tied to the listing order that issued them."""

from __future__ import annotations

import pytest

from revaer_core import Cursor, FsJob, InvalidQuery, JobQuery, JobStatus, TorrentQuery, TorrentSort
from revaer_core.contract import samples


@pytest.mark.parametrize(
    ("issued", "used"),
    [
        (TorrentQuery(sort=TorrentSort.ADDED), TorrentQuery(sort=TorrentSort.NAME)),
        (TorrentQuery(sort=TorrentSort.NAME), TorrentQuery(sort=TorrentSort.ADDED)),
        (TorrentQuery(sort=TorrentSort.ADDED), TorrentQuery(sort=TorrentSort.ADDED, descending=True)),
        (TorrentQuery(sort=TorrentSort.UPDATED), TorrentQuery(sort=TorrentSort.ADDED)),
    ],
)
def test_a_cursor_of_another_order_is_refused(issued: TorrentQuery, used: TorrentQuery) -> None:
    token = issued.cursor_of(samples.status(1)).encode()
    with pytest.raises(InvalidQuery, match="another sort order"):
        TorrentQuery(sort=used.sort, descending=used.descending, after=Cursor.decode(token))


def test_a_cursor_round_trips_and_resumes_its_own_order() -> None:
    query = TorrentQuery(sort=TorrentSort.NAME, descending=True)
    status = samples.status(3, name="Ünïcødé 🎬")
    cursor = Cursor.decode(query.cursor_of(status).encode())
    resumed = TorrentQuery(sort=TorrentSort.NAME, descending=True, after=cursor)
    assert resumed.after_key() == ("Ünïcødé 🎬", status.id)


def test_job_cursors_are_not_torrent_cursors() -> None:
    job = FsJob(
        torrent_id=samples.status(1).id,
        status=JobStatus.MOVED,
        source="/downloads/x",
        attempt=1,
        created_at=samples.EPOCH,
        updated_at=samples.EPOCH,
    )
    token = JobQuery.cursor_of(job).encode()
    assert JobQuery(after=Cursor.decode(token)).after_key() == (samples.EPOCH, job.torrent_id)
    with pytest.raises(InvalidQuery):
        TorrentQuery(after=Cursor.decode(token))


@pytest.mark.parametrize("token", ["", "not-base64!", "W10", "bm9wZQ"])
def test_a_foreign_token_is_refused_with_advice(token: str) -> None:
    with pytest.raises(InvalidQuery, match="start from the first page"):
        Cursor.decode(token)
