"""The control operations on a running daemon: a durable add, the user's choices, bad input, a store outage.

The daemon runs in process with the simulated engine (which takes the real
info-hash and file list of real metainfo) over a store that can be made to
fail; the same store object is handed to a second daemon for a restart.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar.testing import TestClient

from revaer_core import AddedVia, RuntimeStore, TorrentState
from revaer_core.api.app import create_app
from revaer_core.control.metainfo import read_magnet, read_metainfo
from revaer_core.control.refs import resolve
from revaer_core.control.requests import OptionsChange, add_request
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import make_payload
from revaer_core.engine.libtorrent import create_metainfo
from revaer_core.errors import Conflict, InvalidInput, NotFound, Refused, StoreUnavailable
from revaer_core.events import OperatorAction
from revaer_core.settings import EngineSettings, RuntimeSettings, Settings
from revaer_core.testing.simulated import SimulatedEngineFactory, SimulationScript
from revaer_core.testing.waiting import wait_for
from tests.support.cli_daemon import InProcess
from tests.support.stores import FaultyStore, open_faulty

BITTORRENT = "application/x-bittorrent"
TOKEN = "control-test-token"


@attrs.define
class Running(InProcess):
    daemon: Daemon
    store: RuntimeStore
    plugin: FaultyStore
    settings: Settings

    def restart(self) -> None:
        self.daemon.stop()
        self.daemon = start(self.settings, self.store)


def start(settings: Settings, store: RuntimeStore) -> Daemon:
    script = SimulationScript(steps=1000, save_path=settings.engine.download_dir)  # no progress of its own
    daemon = Daemon(settings, engine=SimulatedEngineFactory(script), serve_api=False, store=store)
    daemon.start()
    return daemon


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    store, plugin = open_faulty(tmp_path)
    settings = Settings(
        runtime=RuntimeSettings(backend="faulty", data_dir=tmp_path / "data", flush_interval_ms=20),
        engine=EngineSettings(download_dir=tmp_path / "downloads", allowed_save_roots=(tmp_path / "downloads",)),
    )
    run = Running(start(settings, store), store, plugin, settings)
    run.controller._timeout = 1.0
    yield run
    run.daemon.stop()


def torrent_bytes(tmp_path: Path, name: str = "show", seed: int = 0) -> bytes:
    return create_metainfo(make_payload(tmp_path / f"payload-{name}", name=name, seed=seed))


def test_an_add_is_stored_with_its_source_and_choices_before_it_returns(running: Running, tmp_path: Path) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    request = add_request(info, running.settings.engine, paused=True, labels=["tv", "tv", "hd"], skip=[1])
    added = running.controller.add(request, AddedVia.API)
    assert added.created
    stored = running.store.get_torrent(info.torrent_id)
    assert stored is not None and stored.paused and stored.labels == ("hd", "tv")
    assert stored.info_hash == info.info_hash and stored.download_dir == str(running.settings.engine.download_dir)
    assert [f.priority for f in stored.files or ()] == [4, 0, 4]
    source = running.store.load_torrent_sources()[info.torrent_id]
    assert source.metainfo == info.metainfo and source.added_via is AddedVia.API
    assert source.file_priorities == (4, 0, 4, 4)  # the last index is alignment padding
    options = running.engine.options(info.torrent_id)
    assert options is not None and options.paused and options.file_priorities == (4, 0, 4)

    again = running.controller.add(add_request(info, running.settings.engine), AddedVia.CLI)
    assert not again.created and again.status.paused  # the second add changed nothing


def test_a_torrent_with_a_source_only_comes_back_after_a_crash(running: Running, tmp_path: Path) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    magnet = read_magnet("magnet:?xt=urn:btih:" + "c0ffee" * 6 + "c0ff&dn=Film")
    running.controller.add(add_request(info, running.settings.engine, sequential=True, skip=[2]), AddedVia.API)
    running.controller.add(add_request(magnet, running.settings.engine, labels=["film"]), AddedVia.WATCH)
    assert running.store.load_resume_data() == {}  # nothing saved yet: what follows needs the sources
    running.daemon.engine = None  # a crash: the engine saves nothing on the way down
    running.restart()
    assert set(running.engine.torrent_ids()) == {info.torrent_id, magnet.torrent_id}
    kept = running.engine.options(info.torrent_id)
    assert kept is not None and kept.sequential and kept.file_priorities == (4, 4, 0)
    catalog = running.controller.catalog
    assert catalog[magnet.torrent_id].labels == ("film",) and catalog[magnet.torrent_id].name == "Film"
    assert running.daemon.reconciled is not None and running.daemon.reconciled.stopped == ()


def test_choices_are_stored_then_applied(running: Running, tmp_path: Path) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    running.controller.add(add_request(info, running.settings.engine), AddedVia.API)
    ref = info.info_hash[:10]
    running.controller.pause(ref, via=AddedVia.CLI)
    running.controller.set_options(
        ref, OptionsChange(sequential=True, download_limit=1000, labels=("a",)), via=AddedVia.API
    )
    running.controller.set_files(ref, skip=(0,), priorities={2: 7}, via=AddedVia.API)
    stored = running.store.get_torrent(info.torrent_id)
    assert stored is not None
    assert (stored.paused, stored.sequential, stored.download_limit, stored.labels) == (True, True, 1000, ("a",))
    assert [f.priority for f in stored.files or ()] == [0, 4, 7]
    options = running.engine.options(info.torrent_id)
    assert options is not None and options.paused and options.sequential and options.download_limit == 1000
    assert options.file_priorities == (0, 4, 7)
    wait_for(lambda: running.controller.catalog[info.torrent_id].state is TorrentState.STOPPED, "stopped")

    running.controller.set_options(ref, OptionsChange(clear_download_limit=True), via=AddedVia.API)
    running.controller.resume(ref, via=AddedVia.API)
    running.restart()
    back = running.engine.options(info.torrent_id)
    assert back is not None and not back.paused and back.download_limit is None and back.file_priorities == (0, 4, 7)


def test_remove_forgets_the_torrent_everywhere(running: Running, tmp_path: Path) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    running.controller.add(add_request(info, running.settings.engine), AddedVia.API)
    seen: list[OperatorAction] = []
    running.daemon.bus.subscribe(lambda e: seen.append(e.payload) if isinstance(e.payload, OperatorAction) else None)
    running.controller.remove(str(info.torrent_id), with_data=False, via=AddedVia.CLI)
    assert running.store.get_torrent(info.torrent_id) is None
    assert info.torrent_id not in running.store.load_torrent_sources()
    assert not running.engine.has(info.torrent_id)
    assert [(a.action, a.via) for a in seen] == [("removed", "cli")]
    running.restart()
    assert info.torrent_id not in running.engine.torrent_ids()
    with pytest.raises(NotFound):
        running.controller.resolve(str(info.torrent_id))


def test_an_add_the_store_cannot_confirm_is_not_added(running: Running, tmp_path: Path) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    running.plugin.writes_fail = True
    with pytest.raises(StoreUnavailable, match="was not added"):
        running.controller.add(add_request(info, running.settings.engine), AddedVia.API)
    assert info.torrent_id not in running.controller.catalog and not running.engine.has(info.torrent_id)
    running.plugin.writes_fail = False
    assert running.daemon.orchestrator is not None and running.daemon.orchestrator.flush(5)
    assert running.store.get_torrent(info.torrent_id) is None  # the withdrawn add never lands later
    assert running.controller.add(add_request(info, running.settings.engine), AddedVia.API).created


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"save_path": "/etc"}, Refused, "outside the allowed roots"),
        ({"save_path": "downloads/../../etc"}, Refused, "must not contain '..'"),
        ({"skip": [4]}, Refused, "file index 4 is out of range: its 3 file(s) are numbered 0 to 2"),
        ({"skip": [3]}, Refused, "file index 3 is out of range"),  # the trailing alignment padding
        ({"priorities": {0: 9}}, Refused, "priority must be 0 (skip) to 7"),
        ({"download_limit": -1}, Refused, "download_limit must be >= 0"),
        ({"labels": [""]}, InvalidInput, "label '' must be 1 to 64 characters"),
    ],
)
def test_bad_choices_are_refused_and_change_nothing(
    running: Running, tmp_path: Path, change: dict[str, Any], error: type[Exception], words: str
) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    with pytest.raises(error) as raised:
        add_request(info, running.settings.engine, **change)
    assert words in str(raised.value)
    assert running.controller.catalog.get(info.torrent_id) is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"hello, this is not a torrent", "not a valid torrent file"),
        (b"d4:infod4:name1:x", "truncated"),
        (b"d8:announce3:urle", "no 'info' dictionary"),
        (b"l" * 100 + b"e" * 100, "nested deeper than 64"),
    ],
)
def test_what_is_not_a_torrent_says_why(data: bytes, words: str) -> None:
    with pytest.raises(InvalidInput, match=words.replace("(", r"\(")):
        read_metainfo(data)


def test_a_truncated_torrent_and_a_magnet_without_a_hash_are_refused(tmp_path: Path) -> None:
    whole = torrent_bytes(tmp_path)
    with pytest.raises(InvalidInput, match="truncated"):
        read_metainfo(whole[: len(whole) // 2])
    with pytest.raises(InvalidInput, match="no BitTorrent info-hash"):
        read_magnet("magnet:?dn=nothing")
    with pytest.raises(InvalidInput, match="not a magnet link"):
        read_magnet("http://example.invalid/x.torrent")


def test_ids_resolve_by_unique_prefix_and_ambiguity_is_a_conflict(running: Running, tmp_path: Path) -> None:
    info = read_metainfo(torrent_bytes(tmp_path))
    running.controller.add(add_request(info, running.settings.engine), AddedVia.API)
    assert running.controller.resolve(str(info.torrent_id)[:13]).id == info.torrent_id
    assert running.controller.resolve(info.info_hash.upper()[:12]).id == info.torrent_id
    with pytest.raises(InvalidInput, match="at least 4"):
        running.controller.resolve("ab")
    with pytest.raises(NotFound, match="revaer torrents list"):
        running.controller.resolve("0000000000")

    base = running.controller.catalog[info.torrent_id]
    twins = [attrs.evolve(base, id=uuid.UUID(int=n), info_hash=f"abcd{n:036x}") for n in (1, 2)]
    with pytest.raises(Conflict, match="matches 2 torrents"):
        resolve("abcd", twins)
    assert resolve("abcd" + "0" * 35 + "2", twins).id == uuid.UUID(int=2)


# -- the HTTP API over the same controller ------------------------------------------------------------


@pytest.fixture
def api(running: Running) -> Iterator[TestClient[Any]]:
    daemon = running.daemon
    assert daemon.orchestrator is not None
    app = create_app(
        running.store,
        bus=daemon.bus,
        catalog=daemon.orchestrator.catalog,
        token=TOKEN,
        controller=running.controller,
        max_upload_bytes=64 * 1024,
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def test_the_api_adds_from_each_kind_of_body(api: TestClient[Any], running: Running, tmp_path: Path) -> None:
    raw = torrent_bytes(tmp_path, "raw")
    first = api.post(
        "/v1/torrents",
        content=raw,
        headers={"Content-Type": "application/x-bittorrent"},
        params=[("paused", "true"), ("label", "x"), ("skip_file", "1"), ("priority", "2=7")],
    )
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/v1/torrents/{first.json()['id']}"
    assert first.json()["paused"] is True and [f["priority"] for f in first.json()["files"]] == [4, 0, 7]
    again = api.post("/v1/torrents", content=raw, headers={"Content-Type": BITTORRENT})
    assert again.status_code == 200 and "location" not in again.headers

    upload = {"torrent": ("a.torrent", torrent_bytes(tmp_path, "form"))}
    form = api.post("/v1/torrents", files=upload, data={"label": "f"})
    assert form.status_code == 201 and form.json()["labels"] == ["f"]
    body = {"metainfo": base64.b64encode(torrent_bytes(tmp_path, "json")).decode(), "sequential": True}
    assert api.post("/v1/torrents", json=body).json()["sequential"] is True
    magnet = api.post("/v1/torrents", json={"magnet": "magnet:?xt=urn:btih:" + "ab" * 20, "skip_files": [5]})
    assert magnet.status_code == 201 and magnet.json()["files"] is None
    assert magnet.json()["state"] == "fetching_metadata"
    assert len(running.store.load_torrent_sources()) == 4


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"content": b"not a torrent", "headers": {"Content-Type": "application/x-bittorrent"}}, 400, "not a valid"),
        ({"content": b"x" * (70 * 1024), "headers": {"Content-Type": "application/x-bittorrent"}}, 413, "max_upload"),
        ({"json": {"magnet": "magnet:?dn=x"}}, 400, "info-hash"),
        ({"json": {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20, "save_path": "/"}}, 422, "allowed roots"),
        ({"json": {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20, "download_limit": -5}}, 422, ">= 0"),
        ({"json": {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20, "paused": "yes"}}, 400, "paused"),
        ({"json": {"metainfo": "bm90IGEgdG9ycmVudA==é"}}, 400, "base64"),  # was a 500: b64decode's bare ValueError
        ({"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 400, "application/x-bittorrent"),
    ],
)
def test_bad_adds_are_problems_and_add_nothing(
    api: TestClient[Any], running: Running, kwargs: dict[str, Any], status: int, words: str
) -> None:
    answer = api.post("/v1/torrents", **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert words in answer.json()["detail"]
    assert len(running.controller.catalog) == 0


def test_api_actions_and_their_errors(api: TestClient[Any], running: Running, tmp_path: Path) -> None:
    added = api.post("/v1/torrents", content=torrent_bytes(tmp_path), headers={"Content-Type": BITTORRENT})
    torrent_id = added.json()["id"]
    assert api.post(f"/v1/torrents/{torrent_id[:8]}/pause").json()["paused"] is True
    assert api.post(f"/v1/torrents/{torrent_id}/resume").json()["paused"] is False
    assert api.post(f"/v1/torrents/{torrent_id}/recheck").status_code == 200
    assert api.post(f"/v1/torrents/{torrent_id}/reannounce").status_code == 200
    changed = api.patch(f"/v1/torrents/{torrent_id}", json={"upload_limit": 2048, "labels": ["z", "y"]})
    assert changed.json()["upload_limit"] == 2048 and changed.json()["labels"] == ["y", "z"]
    assert api.patch(f"/v1/torrents/{torrent_id}", json={"upload_limit": 0}).json()["upload_limit"] is None
    files = api.patch(f"/v1/torrents/{torrent_id}/files", json={"skip": [2]})
    assert [f["priority"] for f in files.json()["files"]] == [4, 4, 0]
    assert api.get(f"/v1/torrents/{torrent_id}/files").json()["files"][2]["selected"] is False
    assert api.patch(f"/v1/torrents/{torrent_id}/files", json={"skip": [9]}).status_code == 422
    for lenient in ({"sequential": "1"}, {"upload_limit": "5"}, {"upload_limit": 5.5}, {"labels": "z"}):
        refused = api.patch(f"/v1/torrents/{torrent_id}", json=lenient)  # read strictly: "1" is not true
        assert refused.status_code == 400 and "request body" in refused.json()["detail"], lenient
    assert api.patch(f"/v1/torrents/{torrent_id}", json={"upload_limit": 4096.0}).json()["upload_limit"] == 4096
    assert api.patch(f"/v1/torrents/{torrent_id}/files", json={"priorities": {"x": 1}}).status_code == 400
    assert api.post("/v1/torrents/ffffffff/pause").status_code == 404
    assert api.post("/v1/torrents/zz/pause").status_code == 400
    refused = api.post(f"/v1/torrents/{torrent_id}/pause", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert api.delete(f"/v1/torrents/{torrent_id}", params={"with_data": "true"}).status_code == 200
    assert api.get(f"/v1/torrents/{torrent_id}").status_code == 404


def test_a_stand_alone_api_names_revaer_run(running: Running) -> None:
    with TestClient(create_app(running.store, token=TOKEN), base_url="http://127.0.0.1") as api:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = api.post("/v1/torrents/123e4567-e89b-12d3-a456-426614174000/pause", headers=auth)
        assert answer.status_code == 503 and "revaer run" in answer.json()["detail"]
        prefix = api.post("/v1/torrents/abcd/pause", headers=auth)  # only the daemon's catalog resolves prefixes
        assert prefix.status_code == 400 and "UUID" in prefix.json()["detail"]
