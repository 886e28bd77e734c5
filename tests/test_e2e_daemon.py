"""End to end: a real engine on loopback, FsOps, the PostgreSQL store, and a restart.

The daemon downloads a torrent from a second libtorrent session, FsOps copies
it into the library, the store shows ``completed``/``moved``; after a restart
the engine restores the torrent from stored resume data as a seed, without a
recheck, and the hydrated catalog equals the one before.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from revaer_core import JobEvent, JobStatus, TorrentState, TransferMode
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import FAST_SESSION, LoopbackTorrent, Seeder, loopback_settings, make_payload
from revaer_core.engine import AddOptions
from revaer_core.engine.libtorrent import LibtorrentEngine
from revaer_core.settings import FsOpsSettings, Settings
from revaer_core.testing.waiting import wait_for
from tests.support.postgres import pg_runtime

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def settings(pg_url: str, pg_schema: str, tmp_path: Path) -> Settings:
    return Settings(
        runtime=pg_runtime(pg_url, pg_schema, tmp_path / "data"),
        engine=loopback_settings(tmp_path / "downloads"),
        fsops=FsOpsSettings(enabled=True, library_root=tmp_path / "library", transfer_mode=TransferMode.COPY),
    )


def test_download_move_restart_restore(settings: Settings, tmp_path: Path) -> None:
    library = tmp_path / "library"
    torrent = LoopbackTorrent.of(make_payload(tmp_path / "seed"))
    with Seeder(torrent) as seeder:
        first = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
        first.start()
        try:
            assert first.engine is not None and first.orchestrator is not None and first.store is not None
            torrent_id = first.engine.add(torrent.source, AddOptions(settings.engine.download_dir))
            assert isinstance(first.engine, LibtorrentEngine)
            first.engine.connect_peer(torrent_id, seeder.endpoint)
            store = first.store
            wait_for(lambda: (job := store.get_job(torrent_id)) is not None and job.status is JobStatus.MOVED, "FsOps")
            assert first.orchestrator.flush(10)
            before = first.orchestrator.catalog.snapshot()
            stored = store.get_torrent(torrent_id)
            assert stored is not None and stored.state is TorrentState.COMPLETED
            assert stored.library_path == str(library / "revaer-demo")
            job = store.get_job(torrent_id)
            assert job is not None and (job.transfer_mode, job.destination) == (TransferMode.COPY, stored.library_path)
            assert [e.event for e in store.job_history(torrent_id)] == [JobEvent.STARTED, JobEvent.COMPLETED]
        finally:
            assert first.stop().clean
    assert (library / "revaer-demo" / "episode-01.mkv").read_bytes() == (
        torrent.payload / "episode-01.mkv"
    ).read_bytes()

    second = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
    second.start()
    try:
        assert second.engine is not None and second.orchestrator is not None and second.reconciled is not None
        assert second.reconciled.matched == 1 and second.reconciled.stopped == ()
        assert isinstance(second.engine, LibtorrentEngine)
        engine = second.engine
        wait_for(lambda: "seeding" in engine.native_states(torrent_id), "the restored torrent to seed")
        assert "checking_files" not in engine.native_states(torrent_id), "the restore rechecked the files"
        after = second.orchestrator.catalog.snapshot()
        # The engine's restore refreshes the rates and the update time; every other field is the one stored.
        settled = attrs.evolve(
            after[torrent_id], rates=before[torrent_id].rates, last_updated=before[torrent_id].last_updated
        )
        diff = [
            f.name
            for f in attrs.fields(type(settled))
            if getattr(settled, f.name) != getattr(before[torrent_id], f.name)
        ]
        assert not diff, f"fields differ after the restart: {diff}"
        assert after.keys() == before.keys()
    finally:
        assert second.stop().clean
