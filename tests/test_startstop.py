"""A restart of ``revaer run`` with a few hundred torrents: the catalog is complete when it says it runs, and
a restart writes nothing it has just read.

Real parts throughout: qbittorrent-nox takes the torrents, ``revaer import``
brings them in (stored as queued, with qBittorrent's resume data), and the
daemon is ``revaer run`` in a subprocess (the test harness's, for its
event log) with the libtorrent engine on PostgreSQL. No timing is asserted (the bench ``benchmarks/startstop.py``
measures it).
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import httpx
import pytest

from revaer_core import StoreRole
from revaer_core.engine import torrent_id_for
from revaer_core.plugins import open_store
from revaer_core.settings import load_settings
from revaer_core.testing.clients import tiny_torrents
from revaer_core.testing.process import Daemons, EventLogView, revaer, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import pg_options
from tests.support.clients import Qbittorrent

pytestmark = pytest.mark.postgres

COUNT = 300


def _config(tmp_path: Path, pg_url: str, pg_schema: str) -> Path:
    return write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data"), "flush_interval_ms": 100},
            "runtime.postgres": pg_options(pg_url, pg_schema),
            "engine": {"download_dir": str(tmp_path / "downloads"), "listen_interfaces": "127.0.0.1:0"},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )


def _catalog_states(api: str, ids: list[UUID]) -> dict[UUID, tuple[str, int, int]]:
    """Each torrent's state and progress as the running daemon's catalog has it (``GET /v1/torrents/{id}``)."""
    found = {}
    with httpx.Client(base_url=api, timeout=30) as client:
        for torrent_id in ids:
            status = client.get(f"/v1/torrents/{torrent_id}").raise_for_status().json()
            found[torrent_id] = (status["state"], status["progress"]["downloaded"], status["progress"]["total"])
    return found


def test_after_a_restart_every_restored_torrent_has_its_state_before_the_daemon_runs(
    tmp_path: Path, pg_url: str, pg_schema: str, daemons: Daemons
) -> None:
    torrents = tiny_torrents(tmp_path / "downloads", COUNT)
    ids = [torrent_id_for(t.info_hash) for t in torrents]
    client = Qbittorrent(tmp_path / "qbt")
    client.take(torrents)
    config = _config(tmp_path, pg_url, pg_schema)
    assert revaer("runtime", "migrate", config=config).returncode == 0
    assert revaer("import", "qbittorrent", str(client.backup), config=config, timeout=300).returncode == 0
    # what the import stored: every torrent queued, nothing downloaded as far as the store knows
    store = open_store(load_settings(config, env={}).runtime, StoreRole.CLIENT)
    try:
        stored = {s.id: s for s in store.load_torrents()}
    finally:
        store.close()
    assert set(stored) == set(ids)
    assert {s.state.value for s in stored.values()} == {"queued"}

    first = daemons("--engine", "libtorrent", "--event-log", str(tmp_path / "first.jsonl"), config=config)
    first.wait_running(timeout=300)
    # the banner is printed once start() returned: no alert has to come first for the catalog to be right
    states = _catalog_states(first.api_url, ids)
    assert {state for state, _, _ in states.values()} == {"seeding"}
    assert all(downloaded == total > 0 for _, downloaded, total in states.values())
    assert first.terminate() == 0

    second_log = tmp_path / "second.jsonl"
    second = daemons("--engine", "libtorrent", "--event-log", str(second_log), config=config)
    second.wait_running(timeout=300)
    assert {state for state, _, _ in _catalog_states(second.api_url, ids).values()} == {"seeding"}
    # several status rounds and flushes: the engine's first report of each torrent repeats what the store holds
    wait_for(lambda: len(EventLogView.read(second_log).of_type("ProgressUpdated")) >= COUNT, "progress", 60)
    assert second.terminate() == 0
    view = EventLogView.read(second_log)
    rewritten = {row[0] for flush in view.written for row in flush["upserted"]}
    assert rewritten == set(), f"a restart rewrote {len(rewritten)} of {COUNT} statuses it had just read"
    assert not view.of_type("TorrentAdded") and not view.of_type("StateChanged")
