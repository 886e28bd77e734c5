"""End to end: an operator drives ``revaer run`` with the CLI, the daemon is killed, and nothing is lost.

A real libtorrent engine on loopback and the PostgreSQL store. The first
torrent is added paused with a skipped file and a label, resumed, and
downloaded from a local seeder; a second is added and the daemon is killed
with SIGKILL within 100 ms of that add returning, long before its first
resume-data save. After the restart the engine holds both torrents with what
the user chose, asked of the libtorrent handles themselves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from revaer_core import TorrentState
from revaer_core.control.metainfo import read_metainfo
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import FAST_SESSION, LoopbackTorrent, Seeder, make_payload
from revaer_core.engine.libtorrent import LibtorrentEngine
from revaer_core.settings import load_settings
from revaer_core.testing.clients import free_port
from revaer_core.testing.process import Daemons, revaer, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import pg_options

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def control_config(
    tmp_path: Path, pg_url: str, pg_schema: str, *, engine_port: int | None = None, api_port: int | None = None
) -> Path:
    """The daemon's settings file; a port not given is a free one."""
    engine_port = engine_port or free_port()
    return write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data")},
            "runtime.postgres": pg_options(pg_url, pg_schema),
            # resume data every 10 s (the default): the kill below comes long before the first save
            "engine": {
                "download_dir": str(tmp_path / "downloads"),
                "listen_interfaces": f"127.0.0.1:{engine_port}",
                "alert_poll_ms": 20,
                "status_interval_ms": 100,
            },
            "api": {"port": api_port or free_port()},
        },
    )


def cli_json(config: Path, *args: str) -> dict[str, object]:
    done = revaer(*args, "--json", config=config)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_choices_survive_a_kill_right_after_an_add(
    daemons: Daemons, tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    engine_port, api_port = free_port(), free_port()
    config = control_config(tmp_path, pg_url, pg_schema, engine_port=engine_port, api_port=api_port)
    first = LoopbackTorrent.of(make_payload(tmp_path / "seed"))
    second = LoopbackTorrent.of(make_payload(tmp_path / "other", name="other-show", seed=7))
    first_id = read_metainfo(first.metainfo).torrent_id
    second_id = read_metainfo(second.metainfo).torrent_id
    first_file = first.write(tmp_path / "first.torrent")
    second_file = second.write(tmp_path / "second.torrent")
    api = f"http://127.0.0.1:{api_port}"

    daemon = daemons(config=config, product=True)
    daemon.wait_running()
    added = cli_json(config, "torrents", "add", str(first_file), "--paused", "--skip-file", "1", "--label", "tv")
    assert added["id"] == str(first_id) and added["paused"] is True and added["labels"] == ["tv"]
    assert httpx.get(f"{api}/v1/torrents/{first_id}").json()["state"] == "stopped"

    with Seeder(first) as seeder:
        assert revaer("torrents", "resume", str(first_id)[:8], config=config).returncode == 0
        seeder.engine.connect_peer(first_id, ("127.0.0.1", engine_port))

        def downloaded() -> bool:
            status = httpx.get(f"{api}/v1/torrents/{first_id}").json()
            return bool(status["state"] in {"seeding", "completed"})

        wait_for(downloaded, "the first torrent to download from the local seeder", timeout=60)

    done = revaer("torrents", "add", str(second_file), "--label", "film", config=config)
    killed_at = time.monotonic()
    daemon.kill()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - killed_at < 0.1, "the kill came more than 100 ms after the add returned"
    layout = read_metainfo(first.metainfo).files or ()
    downloads = tmp_path / "downloads"
    wanted, skipped = downloads / layout[0].path, downloads / layout[1].path
    assert wanted.read_bytes() == (first.payload.parent / layout[0].path).read_bytes()
    whole = (first.payload.parent / layout[1].path).read_bytes()
    assert not skipped.exists() or skipped.read_bytes() != whole, "the skipped file was downloaded"

    # While the daemon is down the CLI shows what the user chose, from the store.
    shown = cli_json(config, "torrents", "show", str(second_id))
    assert shown["labels"] == ["film"] and shown["paused"] is False

    settings = load_settings(config)
    restarted = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
    restarted.start()
    try:
        engine = restarted.engine
        assert isinstance(engine, LibtorrentEngine) and restarted.orchestrator is not None
        assert engine.torrent_ids() == {first_id, second_id}
        assert restarted.reconciled is not None and restarted.reconciled.stopped == ()
        kept = engine.applied(first_id)
        assert kept is not None and kept.paused is False and kept.file_priorities[1] == 0
        assert kept.file_priorities[0] == 4 and kept.file_priorities[2] == 4
        fresh = engine.applied(second_id)
        assert fresh is not None and fresh.paused is False and fresh.save_path == settings.engine.download_dir
        catalog = restarted.orchestrator.catalog
        wait_for(lambda: catalog[first_id].state in {TorrentState.SEEDING, TorrentState.COMPLETED}, "a seed again")
        assert catalog[first_id].labels == ("tv",) and catalog[second_id].labels == ("film",)
        assert [f.priority for f in catalog[first_id].files or ()][1] == 0
    finally:
        restarted.stop()


def test_a_paused_torrent_stays_paused_across_a_kill(
    daemons: Daemons, tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    config = control_config(tmp_path, pg_url, pg_schema)
    torrent = LoopbackTorrent.of(make_payload(tmp_path / "seed"))
    torrent_id = read_metainfo(torrent.metainfo).torrent_id
    daemon = daemons(config=config, product=True)
    daemon.wait_running()
    cli_json(config, "torrents", "add", str(torrent.write(tmp_path / "t.torrent")), "--sequential")
    assert revaer("torrents", "pause", str(torrent_id), config=config).returncode == 0
    cli_json(config, "torrents", "set", str(torrent_id), "--download-limit", "64K", "--upload-limit", "32K")
    daemon.kill()

    restarted = Daemon(load_settings(config), engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
    restarted.start()
    try:
        assert isinstance(restarted.engine, LibtorrentEngine)
        applied = restarted.engine.applied(torrent_id)
        assert applied is not None
        assert (applied.paused, applied.sequential) == (True, True)
        assert (applied.download_limit, applied.upload_limit) == (64 * 1024, 32 * 1024)
    finally:
        restarted.stop()
