"""``revaer import qbittorrent``: state written by a real qbittorrent-nox, imported without a recheck.

qBittorrent verifies three local torrents (one lacks a file's data, so it is
partly done, and that file is skipped), one is paused, two carry tags or a
category; it quits through its API and Revaer imports its ``BT_backup``.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import libtorrent as lt
import pytest

from revaer_core.cli import main
from revaer_core.cli.client import DaemonClient
from revaer_core.control.metainfo import bdecode
from revaer_core.errors import InvalidInput
from revaer_core.health import StoreRole
from revaer_core.plugins import open_store
from revaer_core.settings import Settings
from revaer_core.testing.importing import config_for
from revaer_core.testing.process import write_config
from revaer_core.testing.waiting import wait_for
from tests.support.clients import Qbittorrent, free_port, make_torrents
from tests.support.imports import (
    Expected,
    State,
    check_engine,
    checked_state,
    import_offline,
    migrated,
    running_daemon,
    state_settings,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: qBittorrent's priorities as libtorrent's (its "normal" is 1).
QBT_PRIORITY = {0: 0, 1: 4, 6: 6, 7: 7}


@pytest.fixture(scope="module")
def qbt_state(tmp_path_factory: pytest.TempPathFactory) -> State:
    """The BT_backup a real qBittorrent wrote, its download folder, and what its API said of each torrent."""
    root = tmp_path_factory.mktemp("qbt")
    downloads = root / "downloads"
    torrents = make_torrents(downloads, 3, missing_in=[1])
    client = Qbittorrent(root / "profile")
    client.start()
    try:
        client.add(torrents[0], tags=["tv", "x"])
        client.add(torrents[1])
        client.add(torrents[2], category="movies")
        client.settle(3)
        client.call("torrents/filePrio", {"hash": torrents[1].info_hash, "id": "2", "priority": "0"})
        client.call("torrents/filePrio", {"hash": torrents[2].info_hash, "id": "0", "priority": "7"})
        client.call("torrents/pause", {"hashes": torrents[0].info_hash})
        wait_for(lambda: client.torrents()[torrents[0].info_hash]["state"].startswith("paused"), "the pause", 30)
        full = client.torrents()[torrents[2].info_hash]["size"]  # the same layout, nothing skipped
        wait_for(lambda: client.torrents()[torrents[1].info_hash]["size"] < full, "the skip to show in its size", 30)
        expected = {}
        for h, t in client.torrents().items():
            files = client.call("torrents/files", {"hash": h})
            expected[h] = Expected(
                name=t["name"],
                downloaded=int(t["completed"]),
                total=int(t["size"]),
                paused=t["state"].startswith("paused"),
                priorities=tuple(QBT_PRIORITY.get(f["priority"], f["priority"]) for f in files),
                labels=tuple(
                    sorted(
                        {
                            *(x.strip() for x in t["tags"].split(",") if x.strip()),
                            *([t["category"]] if t["category"] else []),
                        }
                    )
                ),
            )
    finally:
        client.stop()
    return checked_state(client.backup, downloads, expected)


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, pg_schema: str, qbt_state: State) -> Settings:
    return state_settings(tmp_path, pg_url, pg_schema, qbt_state)


def test_an_import_without_a_daemon_is_restored_at_the_next_run_with_its_progress_and_no_recheck(
    settings: Settings,
    tmp_path: Path,
    qbt_state: State,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = import_offline(settings, tmp_path, "qbittorrent", qbt_state, lambda: capsys.readouterr().out)
    assert "postgres store" in out


def test_an_import_goes_through_the_running_daemons_add(
    settings: Settings,
    tmp_path: Path,
    qbt_state: State,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backup, _, expected = qbt_state
    with running_daemon(settings) as daemon:
        config = config_for(tmp_path / "revaer.toml", settings)
        assert main(["--config", str(config), "import", "qbittorrent", str(backup)]) == 0
        out = capsys.readouterr().out
        assert "imported 3, already there 0, skipped 0" in out and "the daemon at" in out
        check_engine(daemon, expected)
        assert main(["--config", str(config), "import", "qbittorrent", str(backup)]) == 0
        assert "imported 0, already there 3, skipped 0" in capsys.readouterr().out


def test_a_dry_run_names_the_corrupt_file_and_imports_nothing(
    settings: Settings,
    tmp_path: Path,
    qbt_state: State,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backup = shutil.copytree(qbt_state[0], tmp_path / "BT_backup")
    corrupt = sorted(backup.glob("*.fastresume"))[0]
    corrupt.write_bytes(b"d4:spam")  # cut short
    migrated(settings)
    config = config_for(tmp_path / "revaer.toml", settings)
    assert main(["--config", str(config), "import", "qbittorrent", str(backup), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert f"skipped {corrupt}: corrupt" in captured.err
    assert "would import 2, already there 0, skipped 1" in captured.out
    store = open_store(settings.runtime, StoreRole.CLIENT)
    try:
        assert store.load_torrents() == []
    finally:
        store.close()


def test_a_folder_that_is_not_a_bt_backup_is_one_error_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["import", "qbittorrent", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no .fastresume files" in err[0]
    assert main(["import", "qbittorrent", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_daemon_refuses_resume_data_that_is_broken_or_of_another_torrent(
    settings: Settings, qbt_state: State
) -> None:
    backup = qbt_state[0]
    first, second = sorted(backup.glob("*.torrent"))[:2]
    metainfo = base64.b64encode(first.read_bytes()).decode()
    other = base64.b64encode(second.with_suffix(".fastresume").read_bytes()).decode()
    with running_daemon(settings) as daemon:
        client = DaemonClient.from_settings(settings)
        cases = {
            "not valid base64": {"metainfo": metainfo, "resume_data": "%%%"},
            "not with a magnet link": {"magnet": "magnet:?xt=urn:btih:" + "a" * 40, "resume_data": other},
            "of another torrent": {"metainfo": metainfo, "resume_data": other},
            "cannot read": {"metainfo": metainfo, "resume_data": base64.b64encode(b"d1:x").decode()},
        }
        for words, body in cases.items():
            with pytest.raises(InvalidInput, match=words):
                client.request("POST", "/v1/torrents", json_body=body)
        assert daemon.orchestrator is not None and len(daemon.orchestrator.catalog) == 0, "a refused add was kept"


def test_the_dry_runs_json_says_what_each_torrent_keeps_and_loses(
    tmp_path: Path, qbt_state: State, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = shutil.copytree(qbt_state[0], tmp_path / "BT_backup")
    changed = sorted(backup.glob("*.fastresume"))[0]
    keys = bdecode(changed.read_bytes())
    keys |= {b"qBt-name": b"My name", b"qBt-ratioLimit": 1500, b"download_rate_limit": 51200}
    changed.write_bytes(bytes(lt.bencode(keys)))
    config = write_config(
        tmp_path / "revaer.toml", {"engine": {"download_dir": str(qbt_state[1])}, "api": {"port": free_port()}}
    )
    assert main(["--config", str(config), "import", "qbittorrent", str(backup), "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["client"], report["dry_run"], report["counts"]["would_import"]) == ("qbittorrent", True, 3)
    row = next(r for r in report["torrents"] if r["file"] == str(changed))
    assert row["download_limit"] == 51200 and row["outcome"] == "would_import"
    assert "share ratio limit" in row["lost"] and any("My name" in lost for lost in row["lost"])
    want = qbt_state[2][row["info_hash"]]
    assert (row["paused"], tuple(row["labels"])) == (want.paused, want.labels)
