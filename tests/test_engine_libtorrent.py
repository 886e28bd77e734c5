"""The libtorrent adapter against a real second session on 127.0.0.1: no internet, no DHT/LSD/UPnP/NAT-PMP."""

from __future__ import annotations

import functools
import itertools
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from revaer_core import RuntimeStore, events
from revaer_core.demo.seeder import FAST_SESSION, LoopbackTorrent, Seeder, loopback_settings, make_payload
from revaer_core.engine import AddOptions, RestoredTorrent, RestoreRequest, TorrentSource
from revaer_core.engine.libtorrent import LibtorrentEngine, session_settings
from revaer_core.errors import InvalidInput
from revaer_core.settings import EngineSettings
from revaer_core.status import TorrentState, TorrentStatus
from revaer_core.testing.simulated import SimulatedEngine, SimulationScript
from tests.support.engine import WAIT_S, Recorder

EngineFactory = Callable[..., LibtorrentEngine]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[EngineFactory]:
    """Loopback engines (fast timers), all closed at the end of the test even when it fails."""
    engines: list[LibtorrentEngine] = []

    def factory(
        recorder: Recorder, store: RuntimeStore | None = None, *, resume_save_interval_s: float = 0.5
    ) -> LibtorrentEngine:
        settings = attrs.evolve(
            loopback_settings(tmp_path / "downloads"), resume_save_interval_s=resume_save_interval_s
        )
        engine = LibtorrentEngine(recorder, store or RuntimeStore.none(), settings, session_overrides=FAST_SESSION)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: EngineFactory, recorder: Recorder) -> LibtorrentEngine:
    """A started loopback engine that publishes to ``recorder``."""
    started = make_engine(recorder)
    started.start()
    return started


@pytest.fixture
def torrent(tmp_path: Path) -> LoopbackTorrent:
    return LoopbackTorrent.of(make_payload(tmp_path / "seed"))


@pytest.fixture
def seeder(torrent: LoopbackTorrent) -> Iterator[Seeder]:
    with Seeder(torrent) as seeder:
        yield seeder


def _download(engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, save_path: Path) -> uuid.UUID:
    torrent_id = engine.add(seeder.torrent.source, AddOptions(save_path))
    engine.connect_peer(torrent_id, seeder.endpoint)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted) and p.torrent_id == torrent_id)
    return torrent_id


def _status(torrent_id: uuid.UUID, name: str) -> TorrentStatus:
    now = datetime.now(UTC)
    return TorrentStatus(id=torrent_id, added_at=now, last_updated=now, name=name)


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


# -- a download, start to finish ---------------------------------------------------------------


def test_loopback_download_publishes_lifecycle_in_order(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    engine = make_engine(recorder)
    assert engine.start() == []
    started = time.monotonic()
    torrent_id = _download(engine, recorder, seeder, tmp_path / "downloads")
    elapsed = time.monotonic() - started
    mine = [p for p in recorder.snapshot() if getattr(p, "torrent_id", None) == torrent_id]

    def first(match: Callable[[events.EventPayload], bool]) -> int:
        return next(i for i, p in enumerate(mine) if match(p))

    added = first(lambda p: isinstance(p, events.TorrentAdded))
    files = first(lambda p: isinstance(p, events.FilesDiscovered))
    downloading = first(lambda p: isinstance(p, events.StateChanged) and p.state is TorrentState.DOWNLOADING)
    seeding = first(lambda p: isinstance(p, events.StateChanged) and p.state is TorrentState.SEEDING)
    completed = first(lambda p: isinstance(p, events.TorrentCompleted))
    full = first(lambda p: isinstance(p, events.ProgressUpdated) and p.downloaded == p.total > 0)
    assert added < files < downloading < seeding < full < completed
    assert [type(p) for p in mine].count(events.TorrentCompleted) == 1
    assert not [p for p in mine if isinstance(p, events.StateChanged) and p.state is TorrentState.FAILED]

    announced = mine[added]
    assert isinstance(announced, events.TorrentAdded)
    assert announced.name == "revaer-demo" and announced.download_dir == str(tmp_path / "downloads")
    discovered = mine[files]
    assert isinstance(discovered, events.FilesDiscovered)
    assert sorted((f.path, f.size) for f in discovered.files) == [
        ("revaer-demo/episode-01.mkv", 384 * 1024),
        ("revaer-demo/extras/commentary.mp3", 96 * 1024),
        ("revaer-demo/extras/notes.txt", 2 * 1024),
    ]
    progress = [p.downloaded for p in mine if isinstance(p, events.ProgressUpdated)]
    assert progress == sorted(progress), "progress never goes backwards"
    final = mine[full]
    assert isinstance(final, events.ProgressUpdated) and final.total == seeder.torrent.size
    assert _same_tree(seeder.torrent.payload, tmp_path / "downloads" / "revaer-demo")
    assert engine.native_states(torrent_id)[-1] == "seeding"
    assert elapsed < 5, f"a 482 KiB loopback download took {elapsed:.2f} s"


def test_a_torrent_publishes_no_progress_that_repeats_the_last(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    torrent_id = _download(engine, recorder, seeder, tmp_path / "downloads")
    time.sleep(1.5)  # many status rounds of a complete torrent whose peer has nothing to ask for
    mine = [p for p in recorder.of(events.ProgressUpdated) if p.torrent_id == torrent_id]
    repeated = [later for earlier, later in itertools.pairwise(mine) if earlier == later]
    assert mine and not repeated, f"{len(repeated)} of {len(mine)} progress events repeated the one before"


def test_adding_the_same_torrent_twice_returns_the_same_id(
    engine: LibtorrentEngine, recorder: Recorder, torrent: LoopbackTorrent, tmp_path: Path
) -> None:
    first = engine.add(torrent.source, AddOptions(tmp_path / "a"))
    again = engine.add(TorrentSource(torrent_file=torrent.write(tmp_path / "x.torrent")), AddOptions(tmp_path / "b"))
    assert first == again
    assert engine.torrent_ids() == {first}
    recorder.wait_for(lambda p: isinstance(p, events.TorrentAdded))
    assert len(recorder.of(events.TorrentAdded)) == 1


def test_unreadable_sources_are_refused_with_the_reason(engine: LibtorrentEngine, recorder: Recorder) -> None:
    with pytest.raises(InvalidInput, match="not a torrent"):
        engine.add(TorrentSource(metainfo=b"not bencode"), AddOptions(Path("x")))
    with pytest.raises(InvalidInput, match="not a torrent"):
        engine.add(TorrentSource(magnet="http://example.invalid/"), AddOptions(Path("x")))


def test_magnet_waits_for_metadata_then_reports_name_and_files(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    torrent_id = engine.add(TorrentSource(metainfo=seeder.torrent.metainfo), AddOptions(tmp_path / "ignored"))
    engine.remove(torrent_id)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentRemoved))
    recorder.clear()

    info_hash = _info_hash_hex(seeder.torrent.metainfo)
    magnet_id = engine.add(TorrentSource(magnet=f"magnet:?xt=urn:btih:{info_hash}"), AddOptions(tmp_path / "downloads"))
    assert magnet_id == torrent_id  # the id comes from the info-hash, whatever the source
    recorder.wait_for_state(TorrentState.FETCHING_METADATA)
    engine.connect_peer(magnet_id, seeder.endpoint)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))
    names = [p.name for p in recorder.of(events.TorrentAdded)]
    assert names[-1] == "revaer-demo"
    assert len(recorder.of(events.FilesDiscovered)[-1].files) == 3


def _info_hash_hex(metainfo: bytes) -> str:
    import libtorrent as lt

    info = lt.load_torrent_buffer(metainfo).ti
    assert info is not None
    return str(info.info_hashes().v1)


# -- commands ---------------------------------------------------------------------------------------


def test_remove_with_data_deletes_the_files_and_reports_removal(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    torrent_id = _download(engine, recorder, seeder, tmp_path / "downloads")
    payload = tmp_path / "downloads" / "revaer-demo" / "episode-01.mkv"
    assert payload.is_file()
    engine.remove(torrent_id, with_data=True)
    removed = recorder.wait_for(lambda p: isinstance(p, events.TorrentRemoved))
    assert removed == events.TorrentRemoved(torrent_id=torrent_id)
    assert engine.torrent_ids() == frozenset()
    deadline = time.monotonic() + WAIT_S
    while payload.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not payload.exists()
    engine.remove(torrent_id)  # unknown now: ignored
    engine.remove(uuid.uuid4())
    assert len(recorder.of(events.TorrentRemoved)) == 1


def test_added_paused_stays_stopped_until_resumed(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    torrent_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads", paused=True))
    engine.connect_peer(torrent_id, seeder.endpoint)
    recorder.wait_for_state(TorrentState.STOPPED)
    time.sleep(0.3)  # several status ticks: a paused torrent must not move
    assert not recorder.of(events.TorrentCompleted)
    assert all(p.downloaded == 0 for p in recorder.of(events.ProgressUpdated))
    engine.resume(torrent_id)
    engine.connect_peer(torrent_id, seeder.endpoint)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))
    states = [p.state for p in recorder.of(events.StateChanged)]
    assert states[0] is TorrentState.STOPPED
    assert states[-1] is TorrentState.SEEDING


def test_file_priorities_are_applied_and_reported(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    torrent_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads", paused=True))
    recorder.wait_for(lambda p: isinstance(p, events.FilesDiscovered))
    notes = next(f for f in recorder.of(events.FilesDiscovered)[0].files if f.path.endswith("notes.txt"))
    engine.set_file_priorities(torrent_id, {notes.index: 0})
    recorder.wait_for(lambda p: isinstance(p, events.FilesDiscovered) and any(not f.selected for f in p.files))
    update = recorder.of(events.FilesDiscovered)[-1]
    assert {f.path: (f.priority, f.selected) for f in update.files}["revaer-demo/extras/notes.txt"] == (0, False)
    with pytest.raises(InvalidInput, match="no file 99"):
        engine.set_file_priorities(torrent_id, {99: 1})
    with pytest.raises(InvalidInput, match=r"0\.\.7"):
        engine.set_file_priorities(torrent_id, {notes.index: 9})
    engine.set_sequential(torrent_id, True)
    engine.resume(torrent_id)
    engine.connect_peer(torrent_id, seeder.endpoint)
    completed = recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))
    assert completed == events.TorrentCompleted(torrent_id=torrent_id)
    final = [p for p in recorder.of(events.ProgressUpdated) if p.downloaded == p.total]
    assert final and final[-1].total == seeder.torrent.size - 2 * 1024  # the deselected file is not wanted


def test_a_write_error_fails_the_torrent_with_libtorrents_message(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the download directory should be")
    engine = make_engine(recorder)
    engine.start()
    torrent_id = engine.add(seeder.torrent.source, AddOptions(blocker / "downloads"))
    engine.connect_peer(torrent_id, seeder.endpoint)
    failed = recorder.wait_for_state(TorrentState.FAILED)
    assert failed.torrent_id == torrent_id
    assert failed.failure is not None and "not a directory" in failed.failure.lower()
    time.sleep(0.3)  # the pause libtorrent applies to an errored torrent must not hide the failure
    assert recorder.of(events.StateChanged)[-1].state is TorrentState.FAILED
    assert not recorder.of(events.TorrentCompleted)


def test_a_file_deleted_under_a_seed_is_found_by_a_recheck(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    torrent_id = _download(engine, recorder, seeder, tmp_path / "downloads")
    (tmp_path / "downloads" / "revaer-demo" / "episode-01.mkv").unlink()
    recorder.clear()
    engine.recheck(torrent_id)
    recorder.wait_for_state(TorrentState.DOWNLOADING)
    progress = recorder.wait_for(lambda p: isinstance(p, events.ProgressUpdated) and p.downloaded < p.total)
    assert isinstance(progress, events.ProgressUpdated) and progress.downloaded <= seeder.torrent.size - 384 * 1024
    # it downloads the file again from the seeder, but does not complete twice in one run
    recorder.wait_for_state(TorrentState.SEEDING)
    assert not recorder.of(events.TorrentCompleted)


def test_commands_before_start_are_refused(recorder: Recorder) -> None:
    engine = LibtorrentEngine(recorder, RuntimeStore.none(), loopback_settings())
    with pytest.raises(RuntimeError, match="start"):
        engine.pause(uuid.uuid4())
    engine.close()  # never started: nothing to do


def test_session_settings_come_from_the_engine_section() -> None:
    settings = EngineSettings(listen_interfaces="127.0.0.1:6881", enable_dht=True, connections_limit=4000)
    pack = dict(session_settings(settings, {"tick_interval": 100}))
    assert pack["listen_interfaces"] == "127.0.0.1:6881"
    assert pack["connections_limit"] == 4000
    assert pack["enable_dht"] is True
    assert pack["enable_lsd"] is False and pack["enable_upnp"] is False and pack["enable_natpmp"] is False
    assert pack["tick_interval"] == 100
    backlog = pack["listen_queue_size"]
    assert isinstance(backlog, int) and backlog >= 1000  # a thousand peers connecting at once are queued, not dropped


def test_defaults_listen_on_loopback_only_with_discovery_off(recorder: Recorder) -> None:
    engine = LibtorrentEngine(recorder, RuntimeStore.none())
    engine.start()
    try:
        assert engine.listen_port > 0
        assert engine.settings.listen_interfaces == "127.0.0.1:0"
        assert not (
            engine.settings.enable_dht
            or engine.settings.enable_lsd
            or engine.settings.enable_upnp
            or engine.settings.enable_natpmp
        )
    finally:
        engine.close()


# -- resume data through the store --------------------------------------------------------------


def test_resume_data_round_trip_restores_a_seed_without_recheck(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, memory_store: RuntimeStore, tmp_path: Path
) -> None:
    engine = make_engine(recorder, memory_store)
    assert engine.start() == []
    torrent_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads"))
    memory_store.upsert_torrents([_status(torrent_id, "revaer-demo")])  # what the orchestrator does on TorrentAdded
    engine.connect_peer(torrent_id, seeder.endpoint)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))
    assert engine.close() == (), "a close with time to spare gets every torrent's resume data"
    assert set(memory_store.load_resume_data()) == {torrent_id}

    # Change bytes without changing sizes: a recheck would find the first piece bad and download it again.
    episode = tmp_path / "downloads" / "revaer-demo" / "episode-01.mkv"
    corrupted = b"\0" * 1024 + episode.read_bytes()[1024:]
    episode.write_bytes(corrupted)

    after = Recorder()
    restarted = make_engine(after, memory_store)
    restored = RestoredTorrent(torrent_id=torrent_id, name="revaer-demo", state=TorrentState.SEEDING, complete=True)
    assert restarted.start() == [restored]  # known from its resume data, before any alert
    published = after.snapshot()  # what the resume data brings back, published by start() itself
    assert published and isinstance(published[0], events.ProgressUpdated), published
    first_progress = after.wait_for(lambda p: isinstance(p, events.ProgressUpdated))
    assert isinstance(first_progress, events.ProgressUpdated)
    assert first_progress.downloaded == first_progress.total == seeder.torrent.size
    time.sleep(0.5)  # several status ticks: give a completion or a recheck the time to show up
    assert not after.of(events.TorrentCompleted), "a restored seed must not trigger FsOps again"
    native = restarted.native_states(torrent_id)
    assert "checking_files" not in native and native[-1] == "seeding"
    assert episode.read_bytes() == corrupted, "libtorrent trusted the resume data: nothing rechecked or rewritten"
    # the store holds its name, files and state already: the restore repeats none of them, and what the resume
    # data brings back is published by start(), before anyone sees the catalog
    assert {type(p) for p in after.snapshot()} == {events.ProgressUpdated}


def _record_saved(saved: list[uuid.UUID], items: Sequence[tuple[uuid.UUID, bytes]]) -> None:
    saved.extend(torrent for torrent, _ in items)


def _downloaded_and_saved(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, store: RuntimeStore, tmp_path: Path
) -> tuple[uuid.UUID, bytes]:
    """The seeder's torrent downloaded by a stored engine, closed: its id and the resume data the close saved."""
    engine = make_engine(recorder, store)
    engine.start()
    torrent_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads"))
    store.upsert_torrents([_status(torrent_id, "revaer-demo")])
    engine.connect_peer(torrent_id, seeder.endpoint)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))
    assert engine.close() == ()
    return torrent_id, store.load_resume_data()[torrent_id]


def test_a_restore_saves_resume_data_only_for_pieces_found_on_disk(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, memory_store: RuntimeStore, tmp_path: Path
) -> None:
    """A seed restored from its resume data re-reads its pieces from it: nothing new, no save; one restored
    from its source finds them on disk by checking, and saves them at the next piece interval."""
    torrent_id, resume_data = _downloaded_and_saved(make_engine, recorder, seeder, memory_store, tmp_path)

    for request, saves in (
        (RestoreRequest(torrent_id, resume_data=resume_data), False),
        (RestoreRequest(torrent_id, source=seeder.torrent.source, options=AddOptions(tmp_path / "downloads")), True),
    ):
        saved: list[uuid.UUID] = []
        memory_store.route_resume_data(functools.partial(_record_saved, saved))
        after = Recorder()
        restarted = make_engine(after, memory_store, resume_save_interval_s=60.0)  # only pieces can ask for a save
        assert [r.torrent_id for r in restarted.start([request])] == [torrent_id]
        deadline = time.monotonic() + WAIT_S
        while restarted.native_states(torrent_id)[-1:] != ("seeding",) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert restarted.native_states(torrent_id)[-1] == "seeding"
        time.sleep(1.0)  # four piece-save intervals
        assert (torrent_id in saved) is saves, (request, saved)
        restarted.close(timeout=0)  # its shutdown round is not what this test looks at
        memory_store.route_resume_data(None)


def test_a_restored_seed_that_does_nothing_saves_no_resume_data_at_the_interval_or_at_close(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, memory_store: RuntimeStore, tmp_path: Path
) -> None:
    """libtorrent counts a seed modified within a second of its start (its seeding time ticks): not a reason to
    write its resume data again at every restart, twice."""
    torrent_id, resume_data = _downloaded_and_saved(make_engine, recorder, seeder, memory_store, tmp_path)

    saved: list[uuid.UUID] = []
    memory_store.route_resume_data(functools.partial(_record_saved, saved))
    restarted = make_engine(Recorder(), memory_store, resume_save_interval_s=0.2)
    assert [r.torrent_id for r in restarted.start([RestoreRequest(torrent_id, resume_data=resume_data)])] == [
        torrent_id
    ]
    time.sleep(2.0)  # ten save intervals, and status rounds that report libtorrent's unsaved counters
    assert restarted.close() == ()
    assert saved == [], "an idle restored seed wrote its resume data again"
    memory_store.route_resume_data(None)


def test_resume_data_is_saved_on_a_timer_for_stored_torrents_only(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, memory_store: RuntimeStore, tmp_path: Path
) -> None:
    other = LoopbackTorrent.of(make_payload(tmp_path / "other", "unstored", {"a.bin": 40_000}, seed=7))
    engine = make_engine(recorder, memory_store, resume_save_interval_s=0.2)
    engine.start()
    stored_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads"))
    memory_store.upsert_torrents([_status(stored_id, "revaer-demo")])
    engine.connect_peer(stored_id, seeder.endpoint)
    unstored_id = engine.add(other.source, AddOptions(tmp_path / "downloads", paused=True))
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))
    deadline = time.monotonic() + WAIT_S
    while stored_id not in memory_store.load_resume_data() and time.monotonic() < deadline:
        time.sleep(0.05)
    saved = memory_store.load_resume_data()
    assert stored_id in saved, "the timer saved resume data without waiting for close()"
    assert unstored_id not in saved  # the store holds no status for it, so it drops the data


def test_without_a_store_nothing_is_restored_and_the_log_says_so(
    make_engine: EngineFactory, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(recorder)
    with caplog.at_level(logging.INFO, logger="revaer_core.engine.libtorrent"):
        assert engine.start() == []
    assert any("no runtime store selected" in r.getMessage() for r in caplog.records)


def test_unreadable_stored_resume_data_is_skipped_with_a_warning(
    make_engine: EngineFactory, recorder: Recorder, memory_store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    bad_id = uuid.uuid4()
    memory_store.upsert_torrents([_status(bad_id, "broken")])
    memory_store.save_resume_data(bad_id, b"garbage")
    engine = make_engine(recorder, memory_store)
    with caplog.at_level(logging.WARNING, logger="revaer_core.engine.libtorrent"):
        assert engine.start() == []
    assert any(str(bad_id) in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)


# -- the simulated engine speaks the same language ------------------------------------------------


def _lifecycle(payloads: list[events.EventPayload]) -> list[str]:
    """Kinds and states in order, progress left out (how often it comes depends on timing)."""
    return [
        f"state:{p.state.value}" if isinstance(p, events.StateChanged) else p.kind
        for p in payloads
        if not isinstance(p, events.ProgressUpdated)
    ]


def test_simulated_and_real_engines_publish_the_same_lifecycle(
    engine: LibtorrentEngine, recorder: Recorder, seeder: Seeder, tmp_path: Path
) -> None:
    _download(engine, recorder, seeder, tmp_path / "downloads")

    simulated_events = Recorder()
    simulated = SimulatedEngine(simulated_events, script=SimulationScript(files_per_torrent=3, steps=4))
    simulated.start()
    simulated.add(seeder.torrent.source, AddOptions(tmp_path / "sim"))
    simulated.run_until_idle()
    simulated.close()
    assert _lifecycle(simulated_events.snapshot()) == _lifecycle(recorder.snapshot())


def test_a_process_that_forgets_close_still_exits_cleanly(tmp_path: Path) -> None:
    """Sessions left running at interpreter exit used to abort the process ("terminate called ...")."""
    script = f"""
import sys
from pathlib import Path
from revaer_core import RuntimeStore
from revaer_core.engine import AddOptions
from revaer_core.engine.libtorrent import LibtorrentEngine
from revaer_core.demo.seeder import LoopbackTorrent, Seeder, loopback_settings, make_payload
torrent = LoopbackTorrent.of(make_payload(Path({str(tmp_path)!r})))
engine = LibtorrentEngine(lambda payload: None, RuntimeStore.none(), loopback_settings())
engine.start()
engine.add(torrent.source, AddOptions(Path({str(tmp_path / "downloads")!r})))
Seeder(torrent).start()
sys.exit(0)
"""
    for _ in range(3):  # without the fix most runs abort, not all
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        assert "terminate called" not in done.stderr


def test_a_single_file_torrent_downloads_to_its_name(
    make_engine: EngineFactory, recorder: Recorder, tmp_path: Path
) -> None:
    single = tmp_path / "seed" / "clip.bin"
    single.parent.mkdir()
    single.write_bytes(bytes(range(256)) * 300)
    torrent = LoopbackTorrent.of(single)
    assert torrent.size == 256 * 300
    engine = make_engine(recorder)
    engine.start()
    with Seeder(torrent) as seeder:
        torrent_id = _download(engine, recorder, seeder, tmp_path / "downloads")
    assert (tmp_path / "downloads" / "clip.bin").read_bytes() == single.read_bytes()
    files = recorder.of(events.FilesDiscovered)[-1]
    assert files.torrent_id == torrent_id and [f.path for f in files.files] == ["clip.bin"]


def test_a_close_out_of_time_names_the_torrents_whose_resume_data_it_did_not_get(
    make_engine: EngineFactory, recorder: Recorder, seeder: Seeder, memory_store: RuntimeStore, tmp_path: Path
) -> None:
    engine = make_engine(recorder, memory_store)
    engine.start()
    torrent_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads"))
    recorder.wait_for(lambda p: isinstance(p, events.TorrentAdded))
    # no time at all: the save is asked for, and the close does not wait for libtorrent's answer
    assert engine.close(timeout=0.0) == (torrent_id,)


def test_the_alert_thread_ends_as_soon_as_the_close_has_every_answer(
    recorder: Recorder, seeder: Seeder, memory_store: RuntimeStore, tmp_path: Path
) -> None:
    # the alert thread polls once a minute here: a close that waited for its poll would take the whole deadline
    settings = attrs.evolve(loopback_settings(tmp_path / "downloads"), alert_poll_ms=60_000)
    engine = LibtorrentEngine(recorder, memory_store, settings, session_overrides=FAST_SESSION)
    engine.start()
    torrent_id = engine.add(seeder.torrent.source, AddOptions(tmp_path / "downloads"))
    memory_store.upsert_torrents([_status(torrent_id, "revaer-demo")])
    engine.connect_peer(torrent_id, seeder.endpoint)
    recorder.wait_for(lambda p: isinstance(p, events.TorrentCompleted))  # new pieces: resume data to save
    threads = {t.name: t for t in threading.enumerate()}
    alert_thread = threads["revaer-libtorrent"]
    assert engine.close(timeout=30.0) == (), "every torrent answered"
    assert not alert_thread.is_alive(), "the alert thread ended with the round, before the close returned"
    assert set(memory_store.load_resume_data()) == {torrent_id}
