"""Input PostgreSQL cannot take as given: stored sanitised, logged with the torrent id, the batch kept."""

from __future__ import annotations

import logging
import os

import attrs
import psycopg
import pytest

from revaer_core import (
    MAX_BYTES,
    AddedVia,
    FileEntry,
    JobStatus,
    Progress,
    Rates,
    RuntimeStore,
    TorrentQuery,
    TorrentState,
    TorrentStatus,
)
from revaer_core.contract import samples
from revaer_core.testing.jobs import job_failed, job_started

pytestmark = pytest.mark.postgres

BAD_PATH = os.fsdecode(b"Torrent/\xff\xfebad-\xe9.mkv")  # not UTF-8: surrogate-escaped, as os.listdir gives it


@pytest.fixture
def store(pg_store: RuntimeStore) -> RuntimeStore:
    return pg_store


def _poisoned_batch(poisoned: TorrentStatus) -> list[TorrentStatus]:
    return [samples.status(1), poisoned, samples.status(3)]


def _assert_batch_kept(store: RuntimeStore, poisoned: TorrentStatus, returned: object) -> TorrentStatus:
    assert list(returned) == [poisoned.id]  # type: ignore[call-overload]
    for clean in (samples.status(1), samples.status(3)):
        assert store.get_torrent(clean.id) == clean
    stored = store.get_torrent(poisoned.id)
    assert stored is not None
    return stored


@pytest.mark.parametrize(
    ("field", "poisoned"),
    [
        ("name", samples.status(2, name="evil\x00name")),
        ("failure", samples.status(2, state=TorrentState.FAILED, failure="tracker\x00said no")),
        ("library_path", samples.status(2, library_path="/srv/lib\x00rary")),
        ("download_dir", samples.status(2, download_dir="/srv/\x00dl")),
        ("file path", samples.status(2, files=(FileEntry(index=0, path="a\x00b.mkv", size=1),))),
        ("info_hash", samples.status(2, info_hash="0123\x00abcd")),
        ("label", samples.status(2, labels=("fine", "bad\x00label"))),
    ],
)
def test_nul_bytes_are_replaced_and_the_rest_of_the_batch_stored(
    store: RuntimeStore, caplog: pytest.LogCaptureFixture, field: str, poisoned: TorrentStatus
) -> None:
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        returned = store.upsert_torrents(_poisoned_batch(poisoned))
    stored = _assert_batch_kept(store, poisoned, returned)
    texts = [
        stored.name,
        stored.failure,
        stored.library_path,
        stored.download_dir,
        stored.info_hash,
        *stored.labels,
        *(f.path for f in stored.files or ()),
    ]
    assert not any("\x00" in t for t in texts if t)
    assert any("\ufffd" in t for t in texts if t)
    assert any(str(poisoned.id) in r.getMessage() and field in r.getMessage() for r in caplog.records)


def test_paths_that_are_not_utf8_are_stored_readably(store: RuntimeStore, caplog: pytest.LogCaptureFixture) -> None:
    poisoned = samples.status(2, name=BAD_PATH, files=(FileEntry(index=0, path=BAD_PATH, size=5),))
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        returned = store.upsert_torrents(_poisoned_batch(poisoned))
    stored = _assert_batch_kept(store, poisoned, returned)
    assert stored.name == "Torrent/\ufffd\ufffdbad-\ufffd.mkv"
    assert stored.files is not None and stored.files[0].path == stored.name
    assert any(str(poisoned.id) in r.getMessage() and "UTF-8" in r.getMessage() for r in caplog.records)


def test_lone_surrogates_are_replaced(store: RuntimeStore) -> None:
    poisoned = samples.status(2, name="half a pair: \ud83d")
    stored = _assert_batch_kept(store, poisoned, store.upsert_torrents(_poisoned_batch(poisoned)))
    assert stored.name == "half a pair: \ufffd"


def test_numbers_beyond_bigint_are_clamped(store: RuntimeStore, caplog: pytest.LogCaptureFixture) -> None:
    huge = 2**64 + 5
    poisoned = samples.status(
        2,
        progress=Progress(downloaded=huge, total=huge, eta_seconds=-huge),
        rates=Rates(download_bps=huge, upload_bps=1, ratio=0.5),
        files=(FileEntry(index=2**40, path="big", size=huge, bytes_completed=huge, priority=2**40),),
        download_limit=huge,
        upload_limit=huge,
    )
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        stored = _assert_batch_kept(store, poisoned, store.upsert_torrents(_poisoned_batch(poisoned)))
    assert stored.progress == Progress(downloaded=MAX_BYTES, total=MAX_BYTES, eta_seconds=-(2**63))
    assert stored.rates.download_bps == MAX_BYTES
    assert (stored.download_limit, stored.upload_limit) == (MAX_BYTES, MAX_BYTES)
    assert stored.files == (
        FileEntry(index=2**31 - 1, path="big", size=MAX_BYTES, bytes_completed=MAX_BYTES, priority=2**31 - 1),
    )
    assert any(str(poisoned.id) in r.getMessage() and "BIGINT" in r.getMessage() for r in caplog.records)


def test_a_magnet_with_nul_bytes_is_stored_sanitised_with_the_rest_of_its_batch(
    store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.upsert_torrents([samples.status(1), samples.status(2)])
    poisoned = samples.source(1, metainfo=None, magnet="magnet:?xt=urn:btih:00\x00&dn=x")
    clean = samples.source(2, metainfo=samples.BIG_METAINFO)
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        store.save_torrent_sources([poisoned, clean])
    assert store.load_torrent_sources() == {
        poisoned.torrent_id: attrs.evolve(poisoned, magnet="magnet:?xt=urn:btih:00\ufffd&dn=x"),
        clean.torrent_id: clean,
    }
    assert any(str(poisoned.torrent_id) in r.getMessage() and "magnet" in r.getMessage() for r in caplog.records)


def test_a_source_the_server_refuses_costs_only_itself(store: RuntimeStore, pg_url: str, pg_schema: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(
            f"ALTER TABLE \"{pg_schema}\".torrent_sources ADD CONSTRAINT no_forbidden CHECK (magnet <> 'forbidden')"
        )
    store.upsert_torrents([samples.status(1), samples.status(2)])
    refused = samples.source(1, metainfo=None, magnet="forbidden")
    kept = samples.source(2)
    store.save_torrent_sources([refused, kept])
    assert store.load_torrent_sources() == {kept.torrent_id: kept}


def test_an_unknown_way_of_adding_from_a_newer_writer_keeps_the_source(
    store: RuntimeStore, pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.upsert_torrents([samples.status(1)])
    source = samples.source(1, added_via=AddedVia.WATCH)
    store.save_torrent_sources([source])
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"ALTER TYPE \"{pg_schema}\".added_via ADD VALUE 'rss'")
        connection.execute(f"UPDATE \"{pg_schema}\".torrent_sources SET added_via = 'rss'")
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        loaded = store.load_torrent_sources()
    assert loaded == {source.torrent_id: attrs.evolve(source, added_via=AddedVia.API)}
    assert any(str(source.torrent_id) in r.getMessage() and "rss" in r.getMessage() for r in caplog.records)


def test_a_clean_batch_reports_nothing(store: RuntimeStore) -> None:
    assert store.upsert_torrents([s for _, s in samples.edge_cases()]) == ()


def test_an_unknown_state_from_a_newer_writer_is_read_as_stopped(
    store: RuntimeStore, pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    odd, plain = samples.status(1), samples.status(2)
    store.upsert_torrents([odd, plain])
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"ALTER TYPE \"{pg_schema}\".torrent_state ADD VALUE 'checking_files'")
        connection.execute(f"UPDATE \"{pg_schema}\".torrents SET state = 'checking_files' WHERE id = %s", (odd.id,))
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        loaded = {s.id: s for s in store.load_torrents()}
    assert loaded[plain.id] == plain
    assert loaded[odd.id].state is TorrentState.STOPPED
    assert "checking_files" in (loaded[odd.id].failure or "")
    assert store.get_torrent(odd.id) == loaded[odd.id]
    assert [s.id for s in store.list_torrents(TorrentQuery(states={TorrentState.STOPPED})).items] == []
    assert any(str(odd.id) in r.getMessage() and "checking_files" in r.getMessage() for r in caplog.records)


def test_an_unknown_job_status_and_event_are_read_without_failing(
    store: RuntimeStore, pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    status = samples.status(1)
    store.upsert_torrents([status])
    job_started(store, status.id, "/downloads/x")
    job_failed(store, status.id, "disk full")
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"ALTER TYPE \"{pg_schema}\".fs_job_status ADD VALUE 'verifying'")
        connection.execute(f"ALTER TYPE \"{pg_schema}\".job_event ADD VALUE 'verified'")
        connection.execute(f"UPDATE \"{pg_schema}\".fs_jobs SET status = 'verifying'")
        connection.execute(
            f'INSERT INTO "{pg_schema}".fs_job_history (torrent_id, seq, event, status, attempt, at) '
            "VALUES (%s, 3, 'verified', 'verifying', 1, now())",
            (status.id,),
        )
    with caplog.at_level(logging.WARNING, logger="revaer_runtime_pg"):
        job = store.get_job(status.id)
        history = store.job_history(status.id)
    assert job is not None and job.status is JobStatus.FAILED and "verifying" in (job.last_error or "")
    assert [e.seq for e in history] == [1, 2]
    assert any(str(status.id) in r.getMessage() for r in caplog.records)


def test_job_texts_with_nul_bytes_are_stored_sanitised(store: RuntimeStore) -> None:
    status = samples.status(1)
    store.upsert_torrents([status])
    job_started(store, status.id, "/downloads/\x00x")
    failed = job_failed(store, status.id, "bad\x00error")
    assert failed is not None and failed.last_error == "bad\ufffderror"
    assert store.get_job(status.id) == failed
    assert [e.detail for e in store.job_history(status.id)] == [None, "bad\ufffderror"]


def test_a_row_the_server_refuses_costs_only_itself(store: RuntimeStore, pg_url: str, pg_schema: str) -> None:
    # A constraint this store does not know about stands in for any refusal sanitising cannot foresee.
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(
            f'ALTER TABLE "{pg_schema}".torrents ADD CONSTRAINT no_forbidden CHECK (name IS DISTINCT FROM %s)'.replace(
                "%s", "'forbidden'"
            )
        )
    refused = samples.status(2, name="forbidden")
    returned = store.upsert_torrents(_poisoned_batch(refused))
    assert list(returned) == [refused.id]
    assert store.get_torrent(refused.id) is None
    assert {s.id for s in store.load_torrents()} == {samples.status(1).id, samples.status(3).id}
    assert attrs.evolve(refused, name="fine") not in store.load_torrents()
