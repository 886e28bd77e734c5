"""The watch folder: .torrent files dropped into ``[engine] watch_dir`` are added durably, then renamed.

The daemon runs in process with the simulated engine (which takes the real
info-hash of real metainfo made by libtorrent) over the PostgreSQL store, so a
restart in between is a real one: the catalog comes back from the database and
the folder's renames are all that says which files were taken. Two tests use
a store that fails on demand, for what an outage does to a dropped file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import attrs
import pytest

from revaer_core import AddedVia, RuntimeStore, TorrentState
from revaer_core.control.metainfo import read_metainfo
from revaer_core.control.watch import THREAD_NAME, WatchFolder
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import make_payload
from revaer_core.engine.libtorrent import create_metainfo
from revaer_core.events import Event, OperatorAction, WatchFileRejected
from revaer_core.settings import ApiSettings, EngineSettings, RuntimeSettings, Settings, WatchSettings
from revaer_core.testing.simulated import SimulatedEngineFactory, SimulationScript
from revaer_core.testing.waiting import wait_for
from tests.support.postgres import pg_runtime
from tests.support.stores import open_faulty

POLL = 0.1
LIMIT = 2048  #: [api] max_upload_bytes here: a small torrent is ~300 bytes, a 2 MB payload's is larger
LABELS = ("tv", "watched")
WATCH_LOG = "revaer_core.control.watch"


# -- helpers -------------------------------------------------------------------------------------


def metainfo(tmp_path: Path, name: str, *, size: int = 20_000, seed: int = 0) -> bytes:
    """Real .torrent bytes of a fresh payload ``name`` (the seed makes each torrent distinct)."""
    return create_metainfo(make_payload(tmp_path / "payloads" / name, name, {"a.bin": size}, seed=seed))


def torrent_id(data: bytes) -> UUID:
    found: UUID = read_metainfo(data).torrent_id
    return found


def make_settings(
    tmp_path: Path, runtime: RuntimeSettings, *, save_path: Path | None = None, poll: float = POLL
) -> Settings:
    downloads = tmp_path / "downloads"
    watch = WatchSettings(paused=True, labels=LABELS, save_path=save_path or downloads / "tv", poll_interval_s=poll)
    return Settings(
        runtime=runtime,
        engine=EngineSettings(
            download_dir=downloads, allowed_save_roots=(downloads,), watch_dir=tmp_path / "watch", watch=watch
        ),
        api=ApiSettings(max_upload_bytes=LIMIT),
    )


@contextlib.contextmanager
def running(settings: Settings, store: RuntimeStore | None = None) -> Iterator[Daemon]:
    """A started daemon on the simulated engine (no progress of its own), stopped afterwards."""
    script = SimulationScript(steps=1000, save_path=settings.engine.download_dir)
    daemon = Daemon(settings, engine=SimulatedEngineFactory(script), serve_api=False, store=store)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def catalog(daemon: Daemon) -> dict[UUID, TorrentState]:
    assert daemon.orchestrator is not None
    return {i: s.state for i, s in daemon.orchestrator.catalog.snapshot().items()}


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def messages(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == WATCH_LOG and words in r.getMessage()]


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str, pg_schema: str) -> Settings:
    return make_settings(tmp_path, pg_runtime(pg_url, pg_schema, tmp_path / "data", flush_interval_ms=20))


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    """The watch folder, made empty."""
    folder = tmp_path / "watch"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True)
def _watch_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=WATCH_LOG)


# -- the tests ------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_dropped_torrent_is_added_with_the_watch_defaults_and_renamed_added(
    pg_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = tmp_path / "watch"
    data = metainfo(tmp_path, "show")
    tid = torrent_id(data)
    with running(pg_settings) as daemon:
        assert watch.is_dir() and messages(caplog, "did not exist; created it")
        [thread] = watch_threads()
        assert thread.daemon
        actions: list[OperatorAction] = []
        daemon.bus.subscribe(lambda e: actions.append(e.payload) if isinstance(e.payload, OperatorAction) else None)

        (watch / "show.torrent").write_bytes(data)
        wait_for(lambda: names(watch) == {"show.torrent.added"}, "show.torrent to be renamed .added")

        assert daemon.orchestrator is not None and daemon.store is not None
        status = daemon.orchestrator.catalog[tid]
        assert (status.paused, status.state, status.labels) == (True, TorrentState.STOPPED, LABELS)
        assert status.download_dir == str(tmp_path / "downloads" / "tv")
        assert daemon.orchestrator.flush(5)
        stored = daemon.store.get_torrent(tid)
        assert stored is not None and (stored.paused, stored.labels, stored.download_dir) == (
            True,
            LABELS,
            status.download_dir,
        )
        source = daemon.store.load_torrent_sources()[tid]
        assert source.added_via is AddedVia.WATCH and source.metainfo == data
        assert [(a.torrent_id, a.action, a.via) for a in actions] == [(tid, "added", "watch")]
        assert messages(caplog, f"added show.torrent -> torrent {tid} (show)")

        assert daemon.watch is not None
        asked = time.monotonic()
        assert daemon.watch.stop()
        assert time.monotonic() - asked < 1.0 and not watch_threads()


def test_the_same_torrent_again_is_not_added_twice_and_a_taken_name_gets_a_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = tmp_path / "watch"
    data = metainfo(tmp_path, "film")
    settings = make_settings(tmp_path, RuntimeSettings(backend="memory", data_dir=tmp_path / "data"))
    with running(settings) as daemon:
        (watch / "film.torrent").write_bytes(data)
        wait_for(lambda: names(watch) == {"film.torrent.added"}, "the first drop to be taken")
        (watch / "film.torrent").write_bytes(data)  # the same torrent again, under the same name
        (watch / "Copy.TORRENT").write_bytes(data)  # and under another (the suffix in any case)
        expected = {"film.torrent.added", "film.torrent.added.1", "Copy.TORRENT.added"}
        wait_for(lambda: names(watch) == expected, "the second and third drops to be renamed .added")
        assert list(catalog(daemon)) == [torrent_id(data)]
        assert len(messages(caplog, "already present; not added again")) == 2


@pytest.mark.postgres
def test_an_invalid_file_is_renamed_invalid_and_published_and_others_are_left_alone(
    pg_settings: Settings, tmp_path: Path, watch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ignored = {
        ".hidden.torrent": metainfo(tmp_path, "hidden", seed=1),  # a writer's temporary name
        "notes.txt": b"not a .torrent name",
        "old.torrent.added": metainfo(tmp_path, "old", seed=2),  # taken before: never again
        "bad.torrent.invalid": b"refused before",
    }
    for name, content in ignored.items():
        (watch / name).write_bytes(content)
    (watch / "nested.torrent").mkdir()
    (watch / "nested.torrent" / "inner.torrent").write_bytes(metainfo(tmp_path, "inner", seed=3))
    big = metainfo(tmp_path, "big", size=2 * 1024 * 1024, seed=4)
    assert len(big) > LIMIT and read_metainfo(big).files is not None  # a valid torrent, only too large

    with running(pg_settings) as daemon:
        rejected: list[WatchFileRejected] = []

        def on_event(event: Event) -> None:
            if isinstance(event.payload, WatchFileRejected):
                rejected.append(event.payload)

        daemon.bus.subscribe(on_event)
        (watch / "bad.torrent").write_bytes(b"d4:spam4:eggse")  # bencoding, but no torrent
        (watch / "truncated.torrent").write_bytes(metainfo(tmp_path, "cut", seed=5)[:100])
        (watch / "big.torrent").write_bytes(big)
        wait_for(lambda: len(rejected) == 3, "three WatchFileRejected events")
        time.sleep(3 * POLL)  # time for the ignored files to be taken, were they taken

        reasons = {Path(r.path).name: r.reason for r in rejected}
        assert set(reasons) == {"bad.torrent", "truncated.torrent", "big.torrent"}
        assert all(Path(r.path).parent == watch for r in rejected)
        assert "no 'info' dictionary" in reasons["bad.torrent"]
        assert "truncated" in reasons["truncated.torrent"]
        assert "max_upload_bytes" in reasons["big.torrent"] and str(LIMIT) in reasons["big.torrent"]
        assert names(watch) == {
            *ignored,
            "nested.torrent",
            "bad.torrent.invalid.1",  # bad.torrent.invalid was taken
            "truncated.torrent.invalid",
            "big.torrent.invalid",
        }
        assert names(watch / "nested.torrent") == {"inner.torrent"}
        assert catalog(daemon) == {} and len(rejected) == 3
        warned = messages(caplog, "is not a torrent Revaer can add")
        assert len(warned) == 3 and any("bad.torrent" in m and "bad.torrent.invalid.1" in m for m in warned)


def test_a_save_path_outside_the_allowed_roots_makes_a_file_invalid(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    runtime = RuntimeSettings(backend="memory", data_dir=tmp_path / "data")
    settings = make_settings(tmp_path, runtime, save_path=tmp_path / "elsewhere")
    with running(settings) as daemon:
        rejected: list[WatchFileRejected] = []
        daemon.bus.subscribe(lambda e: rejected.append(e.payload) if isinstance(e.payload, WatchFileRejected) else None)
        (watch / "show.torrent").write_bytes(metainfo(tmp_path, "show"))
        wait_for(lambda: names(watch) == {"show.torrent.invalid"}, "show.torrent to be renamed .invalid")
        wait_for(lambda: len(rejected) == 1, "the WatchFileRejected event")
        assert "outside the allowed roots" in rejected[0].reason and catalog(daemon) == {}


def test_a_file_being_written_is_taken_only_once_it_stops_changing(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    poll = 0.2
    settings = make_settings(tmp_path, RuntimeSettings(backend="memory", data_dir=tmp_path / "data"), poll=poll)
    data = metainfo(tmp_path, "slow")
    path = watch / "slow.torrent"
    with running(settings) as daemon:
        half = len(data) // 2
        step = max(1, (len(data) - half) // 40)  # 40 writes 20 ms apart: far more often than the folder is polled
        with path.open("wb") as out:
            out.write(data[:half])
            out.flush()
            written = time.monotonic()
            for start in range(half, len(data), step):
                time.sleep(0.02)
                assert names(watch) == {"slow.torrent"}, "a file still being written was taken"
                out.write(data[start : start + step])
                out.flush()
        assert time.monotonic() - written > 2 * poll, "the writer was quicker than two scans"
        assert names(watch) == {"slow.torrent"} and catalog(daemon) == {}
        wait_for(lambda: names(watch) == {"slow.torrent.added"}, "the finished file to be taken")
        assert list(catalog(daemon)) == [torrent_id(data)]


def test_a_scan_takes_a_file_only_when_two_scans_saw_it_the_same(tmp_path: Path) -> None:
    """The stability rule pass by pass, with the scans driven here instead of by the thread."""
    folder = tmp_path / "dropped"
    folder.mkdir()
    settings = make_settings(tmp_path, RuntimeSettings(backend="memory", data_dir=tmp_path / "data"))
    settings = attrs.evolve(settings, engine=attrs.evolve(settings.engine, watch_dir=None))
    data = metainfo(tmp_path, "steady")
    path = folder / "steady.torrent"
    with running(settings) as daemon:
        assert daemon.watch is None and daemon.controller is not None  # no watch_dir: no watcher of its own
        watcher = WatchFolder(folder, daemon.controller, settings, publish=daemon.bus.publish)
        path.touch()
        watcher.scan()
        watcher.scan()
        assert names(folder) == {"steady.torrent"}, "an empty file (just created) was taken"
        path.write_bytes(data[:-10])
        watcher.scan()  # seen for the first time at this size
        with path.open("ab") as out:
            out.write(data[-10:])
        watcher.scan()  # changed since
        assert names(folder) == {"steady.torrent"} and catalog(daemon) == {}
        watcher.scan()  # the same as the scan before: taken
        assert names(folder) == {"steady.torrent.added"}
        assert list(catalog(daemon)) == [torrent_id(data)]

        again = folder / "again.torrent"
        again.write_bytes(data)
        watcher.scan()
        os.utime(again, ns=(time.time_ns(), time.time_ns() - 10**9))  # same size, another mtime: rewritten
        watcher.scan()
        assert names(folder) == {"steady.torrent.added", "again.torrent"}
        watcher.scan()
        assert names(folder) == {"steady.torrent.added", "again.torrent.added"}


@pytest.mark.postgres
def test_files_dropped_while_the_daemon_is_down_are_taken_at_the_next_start_and_none_twice(
    pg_settings: Settings, tmp_path: Path, watch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torrents = {name: metainfo(tmp_path, name, seed=n) for n, name in enumerate(["early", "second", "third", "fourth"])}
    ids = {name: torrent_id(data) for name, data in torrents.items()}
    (watch / "early.torrent").write_bytes(torrents["early"])  # there before the first start

    with running(pg_settings) as first:
        wait_for(lambda: names(watch) == {"early.torrent.added"}, "a file there at start to be taken")
        (watch / "second.torrent").write_bytes(torrents["second"])
        wait_for(lambda: "second.torrent.added" in names(watch), "second.torrent to be taken")
        assert set(catalog(first)) == {ids["early"], ids["second"]}

    # While it is down: two new files, and second.torrent as if the daemon died between its add and its rename.
    (watch / "third.torrent").write_bytes(torrents["third"])
    (watch / "fourth.torrent").write_bytes(torrents["fourth"])
    (watch / "second.torrent.added").rename(watch / "second.torrent")

    caplog.clear()
    with running(pg_settings) as second:
        assert set(catalog(second)) == {ids["early"], ids["second"]}  # hydrated from the store
        every = {f"{name}.torrent.added" for name in torrents}
        wait_for(lambda: names(watch) == every, "every file to be renamed .added")
        assert set(catalog(second)) == set(ids.values())
        assert second.store is not None and second.orchestrator is not None and second.orchestrator.flush(5)
        sources = second.store.load_torrent_sources()
        assert set(sources) == set(ids.values()) and {s.added_via for s in sources.values()} == {AddedVia.WATCH}
        assert len(messages(caplog, "already present; not added again")) == 1
        assert messages(caplog, "second.torrent is torrent")
        assert len(messages(caplog, "watch folder: added ")) == 2


def test_a_store_that_does_not_confirm_leaves_the_file_for_a_later_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = tmp_path / "watch"
    store, plugin = open_faulty(tmp_path)
    runtime = RuntimeSettings(backend="faulty", data_dir=tmp_path / "data", flush_interval_ms=20)
    data = metainfo(tmp_path, "patient")
    with running(make_settings(tmp_path, runtime), store) as daemon:
        assert daemon.controller is not None
        daemon.controller._timeout = 0.2  # how long an add waits for the store before it gives up
        plugin.writes_fail = True
        (watch / "patient.torrent").write_bytes(data)
        wait_for(lambda: bool(messages(caplog, "left for a later scan")), "the add to be refused")
        time.sleep(8 * POLL)  # a few more scans, each of them trying again
        assert daemon.engine is not None and not daemon.engine.has(torrent_id(data))  # (a retry may be in flight)
        assert names(watch) == {"patient.torrent"}
        assert len(messages(caplog, "left for a later scan")) == 1, "logged at every scan, not once"
        plugin.writes_fail = False
        wait_for(lambda: names(watch) == {"patient.torrent.added"}, "the file to be taken once the store is back")
        assert list(catalog(daemon)) == [torrent_id(data)]
        assert daemon.orchestrator is not None and daemon.orchestrator.flush(5)
        assert store.get_torrent(torrent_id(data)) is not None


def test_a_folder_that_cannot_be_read_is_warned_about_once_and_watched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = tmp_path / "watch"
    settings = make_settings(tmp_path, RuntimeSettings(backend="memory", data_dir=tmp_path / "data"))
    with running(settings) as daemon:
        assert watch.is_dir()
        watch.rmdir()
        watch.write_bytes(b"a file where the folder was")
        wait_for(lambda: bool(messages(caplog, "cannot be read")), "the outage to be warned about")
        time.sleep(5 * POLL)
        assert len(messages(caplog, "cannot be read")) == 1, "warned at every scan, not once per outage"
        watch.unlink()
        watch.mkdir()
        data = metainfo(tmp_path, "back")
        (watch / "back.torrent").write_bytes(data)
        wait_for(lambda: names(watch) == {"back.torrent.added"}, "a file in the folder once it is back")
        assert messages(caplog, "can be read again") and list(catalog(daemon)) == [torrent_id(data)]
