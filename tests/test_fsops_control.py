"""FsOps in a running daemon: a retry starts at once, and a moved torrent keeps seeding from the library.

Real libtorrent sessions on loopback and the PostgreSQL store. In ``move``
mode FsOps moves the payload into the library and the engine is told the
torrent's new place; a second session then downloads the payload from the
daemon, before and after a restart, so the daemon seeds from the library and
never downloads again.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from revaer_core import AddedVia, JobEvent, JobStatus, TorrentState, TransferMode
from revaer_core.control.metainfo import TorrentInfo, read_metainfo
from revaer_core.control.requests import add_request
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import FAST_SESSION, LoopbackTorrent, Seeder, loopback_settings, make_payload
from revaer_core.engine import AddOptions
from revaer_core.engine.libtorrent import LibtorrentEngine
from revaer_core.events import EventPayload, TorrentCompleted
from revaer_core.settings import FsOpsSettings, Settings
from revaer_core.store import RuntimeStore
from revaer_core.testing.waiting import wait_for
from tests.support.postgres import pg_runtime

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def settings_for(tmp_path: Path, pg_url: str, pg_schema: str, mode: TransferMode) -> Settings:
    return Settings(
        runtime=pg_runtime(pg_url, pg_schema, tmp_path / "data"),
        engine=loopback_settings(tmp_path / "downloads"),
        fsops=FsOpsSettings(enabled=True, library_root=tmp_path / "library", transfer_mode=mode),
    )


@pytest.fixture
def torrent(tmp_path: Path) -> LoopbackTorrent:
    """The loopback torrent a test adds, its payload under ``seed/``."""
    return LoopbackTorrent.of(make_payload(tmp_path / "seed"))


def start(settings: Settings) -> Daemon:
    daemon = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
    daemon.start()
    return daemon


def seed_until_job(daemon: Daemon, torrent: LoopbackTorrent, status: JobStatus, what: str) -> TorrentInfo:
    """Add ``torrent`` to the daemon through its controller and seed it from a loopback seeder until its FsOps job
    is ``status`` (``what`` names the wait in a timeout)."""
    assert daemon.controller is not None and daemon.store is not None and isinstance(daemon.engine, LibtorrentEngine)
    info = read_metainfo(torrent.metainfo)
    daemon.controller.add(add_request(info, daemon.settings.engine), AddedVia.API)
    store = daemon.store
    with Seeder(torrent) as seeder:
        daemon.engine.connect_peer(info.torrent_id, seeder.endpoint)
        wait_for(lambda: (j := store.get_job(info.torrent_id)) is not None and j.status is status, what, timeout=60)
    return info


def download_from(daemon: Daemon, torrent: LoopbackTorrent, into: Path) -> None:
    """A second session that knows only the daemon as a peer downloads ``torrent`` completely."""
    assert isinstance(daemon.engine, LibtorrentEngine)
    done = threading.Event()

    def on_event(payload: EventPayload) -> None:
        if isinstance(payload, TorrentCompleted):
            done.set()

    leecher = LibtorrentEngine(
        on_event, RuntimeStore.none(), loopback_settings(into), session_overrides=FAST_SESSION, restore_from_store=False
    )
    leecher.start()
    try:
        torrent_id = leecher.add(torrent.source, AddOptions(into))
        leecher.connect_peer(torrent_id, ("127.0.0.1", daemon.engine.listen_port))
        assert done.wait(60), "the second session did not download the payload from the daemon"
    finally:
        leecher.close()
    for path in torrent.payload.rglob("*"):
        if path.is_file():
            copy = into / torrent.payload.name / path.relative_to(torrent.payload)
            assert copy.read_bytes() == path.read_bytes(), f"{copy} differs from what was seeded"


def test_a_moved_torrent_seeds_from_the_library_before_and_after_a_restart(
    tmp_path: Path, pg_url: str, pg_schema: str, torrent: LoopbackTorrent
) -> None:
    settings = settings_for(tmp_path, pg_url, pg_schema, TransferMode.MOVE)
    library = tmp_path / "library"
    daemon = start(settings)
    try:
        info = seed_until_job(daemon, torrent, JobStatus.MOVED, "FsOps to move the payload")
        assert daemon.store is not None and daemon.orchestrator is not None
        assert isinstance(daemon.engine, LibtorrentEngine)
        catalog = daemon.orchestrator.catalog
        wait_for(lambda: catalog[info.torrent_id].download_dir == str(library), "the save path to follow the move")
        assert not (settings.engine.download_dir / torrent.payload.name).exists()
        assert daemon.engine.applied(info.torrent_id).save_path == library  # type: ignore[union-attr]
        download_from(daemon, torrent, tmp_path / "second")
        assert daemon.orchestrator.flush(10)
        stored = daemon.store.get_torrent(info.torrent_id)
        assert stored is not None and stored.download_dir == str(library)
    finally:
        daemon.stop()

    again = start(settings)
    try:
        assert isinstance(again.engine, LibtorrentEngine) and again.orchestrator is not None
        engine = again.engine
        wait_for(lambda: "seeding" in engine.native_states(info.torrent_id), "the restored torrent to seed")
        assert "downloading" not in engine.native_states(info.torrent_id), "it downloaded again after the restart"
        assert engine.applied(info.torrent_id).save_path == library  # type: ignore[union-attr]
        download_from(again, torrent, tmp_path / "third")
        assert again.orchestrator.catalog[info.torrent_id].state is TorrentState.COMPLETED
    finally:
        again.stop()


def test_a_retry_in_a_running_daemon_starts_the_next_attempt_at_once(
    tmp_path: Path, pg_url: str, pg_schema: str, torrent: LoopbackTorrent
) -> None:
    settings = settings_for(tmp_path, pg_url, pg_schema, TransferMode.COPY)
    library = tmp_path / "library"
    library.write_text("a file where the library folder should be")  # the first attempt fails, even as root
    daemon = start(settings)
    try:
        info = seed_until_job(daemon, torrent, JobStatus.FAILED, "the first attempt to fail")
        assert daemon.controller is not None and daemon.store is not None
        store = daemon.store
        library.unlink()
        asked = time.monotonic()
        job = daemon.controller.retry_job(info.torrent_id, via=AddedVia.CLI)
        assert job.status in {JobStatus.PENDING, JobStatus.MOVING, JobStatus.MOVED}

        def second_attempt_started() -> bool:
            return any(h.event is JobEvent.STARTED and h.attempt == 2 for h in store.job_history(info.torrent_id))

        wait_for(second_attempt_started, "attempt 2 to start", timeout=10)
        assert time.monotonic() - asked < 1.0, "attempt 2 started more than a second after the retry"
        wait_for(lambda: store.get_job(info.torrent_id).status is JobStatus.MOVED, "attempt 2 to finish")  # type: ignore[union-attr]
        assert [h.event for h in store.job_history(info.torrent_id)] == [
            JobEvent.STARTED, JobEvent.FAILED, JobEvent.RETRY, JobEvent.STARTED, JobEvent.COMPLETED,
        ]  # fmt: skip
    finally:
        daemon.stop()
