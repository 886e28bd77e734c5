"""The simulated engine: deterministic scripts, failure injection, and restarts through a real store."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revaer_core import RuntimeStore, events
from revaer_core.engine import AddOptions, RestoredTorrent, TorrentSource
from revaer_core.errors import InvalidInput
from revaer_core.status import TorrentState, TorrentStatus
from revaer_core.testing.simulated import Failure, SimulatedEngine, SimulationScript
from tests.support.engine import Recorder


def _run(script: SimulationScript) -> list[events.EventPayload]:
    recorder = Recorder()
    engine = SimulatedEngine(recorder, script=script)
    engine.start()
    engine.run_until_idle()
    engine.close()
    return recorder.snapshot()


def _of(torrent_id: uuid.UUID, payloads: list[events.EventPayload]) -> list[events.EventPayload]:
    return [p for p in payloads if getattr(p, "torrent_id", None) == torrent_id]


def _persist(store: RuntimeStore, engine: SimulatedEngine) -> None:
    """What the orchestrator does for every torrent it hears of: store its status."""
    now = datetime.now(UTC)
    store.upsert_torrents([TorrentStatus(id=i, added_at=now, last_updated=now) for i in engine.torrent_ids()])


# -- determinism -------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    torrents=st.integers(1, 4),
    files=st.integers(1, 3),
    steps=st.integers(1, 6),
)
def test_the_same_script_gives_the_same_events(seed: int, torrents: int, files: int, steps: int) -> None:
    script = SimulationScript(torrents=torrents, files_per_torrent=files, steps=steps, seed=seed)
    assert _run(script) == _run(script)


def test_another_seed_gives_other_sizes_and_ids() -> None:
    one = _run(SimulationScript(torrents=2, files_per_torrent=2, seed=1))
    two = _run(SimulationScript(torrents=2, files_per_torrent=2, seed=2))
    assert one != two
    assert {p.torrent_id for p in one if isinstance(p, events.TorrentAdded)}.isdisjoint(
        {p.torrent_id for p in two if isinstance(p, events.TorrentAdded)}
    )


def test_a_torrent_goes_through_the_same_lifecycle_as_a_real_download() -> None:
    payloads = _run(SimulationScript(torrents=1, files_per_torrent=3, steps=5, seed=9))
    kinds = [f"state:{p.state.value}" if isinstance(p, events.StateChanged) else p.kind for p in payloads]
    assert kinds == [
        "torrent_added",
        "files_discovered",
        "state:downloading",
        *["progress"] * 4,
        "state:seeding",
        "progress",
        "completed",
    ]
    progress = [p for p in payloads if isinstance(p, events.ProgressUpdated)]
    assert [p.downloaded for p in progress] == sorted(p.downloaded for p in progress)
    assert len({p.downloaded for p in progress}) == 5
    files = next(p for p in payloads if isinstance(p, events.FilesDiscovered)).files
    assert progress[-1].downloaded == progress[-1].total == sum(f.size for f in files)


# -- failures ------------------------------------------------------------------------------------------


def test_a_scripted_failure_fails_that_torrent_at_that_step_only() -> None:
    script = SimulationScript(
        torrents=3, steps=4, seed=3, failures=[Failure(torrent=1, at_step=3, message="disk full")]
    )
    recorder = Recorder()
    engine = SimulatedEngine(recorder, script=script)
    engine.start()
    first, failing, third = engine.torrent_ids()
    engine.run_until_idle()
    failed = [p for p in recorder.snapshot() if isinstance(p, events.StateChanged) and p.state is TorrentState.FAILED]
    assert failed == [events.StateChanged(torrent_id=failing, state=TorrentState.FAILED, failure="disk full")]
    assert len([p for p in _of(failing, recorder.snapshot()) if isinstance(p, events.ProgressUpdated)]) == 2
    assert {p.torrent_id for p in recorder.of(events.TorrentCompleted)} == {first, third}

    engine.resume(failing)  # tried again: the failure was reported once and the torrent finishes
    engine.run_until_idle()
    assert {p.torrent_id for p in recorder.of(events.TorrentCompleted)} == {first, failing, third}
    assert _of(failing, recorder.snapshot())[-2:] == [
        events.ProgressUpdated(
            torrent_id=failing,
            downloaded=recorder.of(events.ProgressUpdated)[-1].total,
            total=recorder.of(events.ProgressUpdated)[-1].total,
            download_bps=recorder.of(events.ProgressUpdated)[-1].download_bps,
            upload_bps=0,
            ratio=0.0,
        ),
        events.TorrentCompleted(torrent_id=failing),
    ]
    engine.close()


def test_fail_injects_a_failure_now() -> None:
    recorder = Recorder()
    engine = SimulatedEngine(recorder, script=SimulationScript(torrents=1, steps=3))
    engine.start()
    (torrent_id,) = engine.torrent_ids()
    engine.step()
    engine.fail(torrent_id, "I/O error")
    assert engine.run_until_idle() == 0  # a failed torrent is not active
    assert recorder.snapshot()[-1] == events.StateChanged(
        torrent_id=torrent_id, state=TorrentState.FAILED, failure="I/O error"
    )
    assert not recorder.of(events.TorrentCompleted)
    engine.close()


def test_script_values_are_checked() -> None:
    with pytest.raises(ValueError, match="steps must be >= 1"):
        SimulationScript(steps=0)
    with pytest.raises(ValueError, match="tick_interval_s"):
        SimulatedEngine(Recorder(), tick_interval_s=0)


# -- commands ------------------------------------------------------------------------------------------


def test_commands_change_the_script() -> None:
    recorder = Recorder()
    engine = SimulatedEngine(recorder, script=SimulationScript(files_per_torrent=2, steps=3))
    engine.start()
    torrent_id = engine.add(TorrentSource(metainfo=b"d4:infod4:name1:xee"), AddOptions(Path("/dl"), paused=True))
    assert engine.add(TorrentSource(metainfo=b"d4:infod4:name1:xee"), AddOptions(Path("/elsewhere"))) == torrent_id
    assert recorder.snapshot()[-1] == events.StateChanged(torrent_id=torrent_id, state=TorrentState.STOPPED)
    assert engine.step() == 0  # paused: nothing moves

    files = recorder.of(events.FilesDiscovered)[-1].files
    engine.set_file_priorities(torrent_id, {1: 0})
    update = recorder.of(events.FilesDiscovered)[-1].files
    assert [(f.priority, f.selected) for f in update] == [(4, True), (0, False)]
    with pytest.raises(InvalidInput, match="no file 2"):
        engine.set_file_priorities(torrent_id, {2: 1})

    engine.resume(torrent_id)
    engine.run_until_idle()
    final = recorder.of(events.ProgressUpdated)[-1]
    assert final.downloaded == final.total == files[0].size  # the deselected file is not wanted
    engine.remove(torrent_id, with_data=True)
    engine.remove(torrent_id)
    assert recorder.of(events.TorrentRemoved) == [events.TorrentRemoved(torrent_id=torrent_id)]
    assert engine.torrent_ids() == ()
    engine.close()


def test_a_magnet_fetches_metadata_first_and_keeps_the_info_hash_id() -> None:
    recorder = Recorder()
    engine = SimulatedEngine(recorder, script=SimulationScript(steps=2))
    engine.start()
    info_hash = "c390f0861ac4263f1a86f4c2c21a732869f3ac89"
    torrent_id = engine.add(TorrentSource(magnet=f"magnet:?xt=urn:btih:{info_hash}&dn=Film"), AddOptions(Path("/dl")))
    engine.run_until_idle()
    kinds = [f"state:{p.state.value}" if isinstance(p, events.StateChanged) else p.kind for p in recorder.snapshot()]
    assert kinds[:5] == [
        "torrent_added",
        "state:fetching_metadata",
        "torrent_added",
        "files_discovered",
        "state:downloading",
    ]
    assert [p.name for p in recorder.of(events.TorrentAdded)] == ["Film", "Film"]
    from revaer_core.engine import torrent_id_for

    assert torrent_id == torrent_id_for(info_hash)


def test_a_subscriber_may_call_back_into_the_engine() -> None:
    recorder = Recorder()
    engine: SimulatedEngine

    def pause_on_first_progress(payload: events.EventPayload) -> None:
        recorder(payload)
        if isinstance(payload, events.ProgressUpdated) and len(recorder.of(events.ProgressUpdated)) == 1:
            engine.pause(payload.torrent_id)

    engine = SimulatedEngine(pause_on_first_progress, script=SimulationScript(torrents=1, steps=3))
    engine.start()
    engine.run_until_idle()
    assert recorder.snapshot()[-2:] == [recorder.of(events.ProgressUpdated)[0], recorder.of(events.StateChanged)[-1]]
    assert recorder.of(events.StateChanged)[-1].state is TorrentState.STOPPED
    engine.close()


def test_the_background_ticker_completes_the_script() -> None:
    recorder = Recorder()
    engine = SimulatedEngine(recorder, script=SimulationScript(torrents=5, steps=5), tick_interval_s=0.005)
    engine.start()
    try:
        for _ in range(5):
            recorder.wait_for(
                lambda p: isinstance(p, events.TorrentCompleted) and len(recorder.of(events.TorrentCompleted)) == 5
            )
    finally:
        engine.close()
    assert len(recorder.of(events.TorrentCompleted)) == 5


# -- restarts ------------------------------------------------------------------------------------------


def test_restart_restores_from_the_store_and_continues_where_it_stopped(memory_store: RuntimeStore) -> None:
    script = SimulationScript(torrents=1, steps=6, seed=4, resume_every_steps=1)
    before = Recorder()
    engine = SimulatedEngine(before, memory_store, script)
    assert engine.start() == []
    _persist(memory_store, engine)
    (done_id,) = engine.torrent_ids()
    engine.run_until_idle()
    partial_id = engine.add(TorrentSource(magnet="magnet:?xt=urn:btih:" + "ab" * 20), AddOptions(Path("/dl")))
    _persist(memory_store, engine)
    for _ in range(4):
        engine.step()  # metadata, then 3 of 6 steps
    engine.close()
    half = [p for p in _of(partial_id, before.snapshot()) if isinstance(p, events.ProgressUpdated)][-1]
    assert 0 < half.downloaded < half.total

    after = Recorder()
    restarted = SimulatedEngine(after, memory_store, script)
    restored = restarted.start()
    assert {r.torrent_id for r in restored} == {done_id, partial_id}
    assert RestoredTorrent(torrent_id=done_id, name="sim-4-00000") in restored
    restored_done = _of(done_id, after.snapshot())
    assert [type(p) for p in restored_done] == [
        events.TorrentAdded,
        events.FilesDiscovered,
        events.StateChanged,
        events.ProgressUpdated,
    ]
    assert restored_done[2] == events.StateChanged(torrent_id=done_id, state=TorrentState.SEEDING)
    first = next(p for p in _of(partial_id, after.snapshot()) if isinstance(p, events.ProgressUpdated))
    assert first.downloaded == half.downloaded  # continues, no recheck from zero
    restarted.run_until_idle()
    completed = [p.torrent_id for p in after.of(events.TorrentCompleted)]
    assert completed.count(partial_id) == 1
    assert done_id not in completed, "a restored seed must not complete (and re-run FsOps) again"
    restarted.close()


def test_restore_can_be_turned_off(memory_store: RuntimeStore) -> None:
    engine = SimulatedEngine(Recorder(), memory_store, SimulationScript(torrents=1))
    engine.start()
    _persist(memory_store, engine)
    engine.close()
    assert memory_store.load_resume_data()
    fresh = Recorder()
    again = SimulatedEngine(fresh, memory_store, SimulationScript(), restore_from_store=False)
    assert again.start() == []
    assert fresh.snapshot() == []
    again.close()


def test_without_a_store_nothing_is_restored_and_the_log_says_so(caplog: pytest.LogCaptureFixture) -> None:
    engine = SimulatedEngine(Recorder(), RuntimeStore.none(), SimulationScript(torrents=1))
    with caplog.at_level(logging.INFO, logger="revaer_core.testing.simulated"):
        assert engine.start() == []
    engine.close()
    assert any("no runtime store selected" in r.getMessage() for r in caplog.records)


def test_foreign_resume_data_is_skipped(memory_store: RuntimeStore, caplog: pytest.LogCaptureFixture) -> None:
    foreign = uuid.uuid4()
    now = datetime.now(UTC)
    memory_store.upsert_torrents([TorrentStatus(id=foreign, added_at=now, last_updated=now)])
    memory_store.save_resume_data(foreign, b"d8:file-format22:libtorrent resume filee")
    engine = SimulatedEngine(Recorder(), memory_store)
    with caplog.at_level(logging.WARNING, logger="revaer_core.testing.simulated"):
        assert engine.start() == []
    engine.close()
    assert any(str(foreign) in r.getMessage() for r in caplog.records)


def test_engines_are_opened_by_name(memory_store: RuntimeStore) -> None:
    from revaer_core.engine.libtorrent import LibtorrentEngine
    from revaer_core.engine.registry import open_engine

    simulated = open_engine("simulated", Recorder(), memory_store)
    assert isinstance(simulated, SimulatedEngine)
    assert isinstance(open_engine("libtorrent", Recorder(), memory_store), LibtorrentEngine)
    with pytest.raises(ValueError, match="known engines: libtorrent, simulated"):
        open_engine("transmission", Recorder(), memory_store)
