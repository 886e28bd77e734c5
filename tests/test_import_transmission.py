"""``revaer import transmission``: state written by a real transmission-daemon, imported without a recheck.

Transmission verifies three local torrents (one lacks a file's data, so it is
partly done, and that file is unwanted), one is stopped, one has labels and
a high-priority file and a download limit; it quits on SIGTERM and Revaer
imports its config folder. Its ``.resume`` carries progress as a block
bitfield or "all", which becomes libtorrent's verified pieces.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import libtorrent as lt
import pytest

from revaer_core.cli import main
from revaer_core.control.metainfo import bdecode
from revaer_core.health import StoreRole
from revaer_core.importers.transmission import pieces_had
from revaer_core.plugins import open_store
from revaer_core.settings import Settings
from revaer_core.testing.importing import config_for
from revaer_core.testing.process import Daemons
from revaer_core.testing.waiting import wait_for
from tests.support.clients import Transmission, make_torrents
from tests.support.imports import (
    Expected,
    State,
    check_engine,
    check_restored,
    checked_state,
    import_offline,
    migrated,
    running_daemon,
    state_settings,
)

#: Transmission's -1, 0, 1 as libtorrent priorities.
TR_PRIORITY = {-1: 1, 0: 4, 1: 7}


@pytest.fixture(scope="module")
def tr_state(tmp_path_factory: pytest.TempPathFactory) -> State:
    """The config folder a real Transmission wrote, its download folder, and what its RPC said of each torrent."""
    root = tmp_path_factory.mktemp("transmission")
    downloads = root / "downloads"
    torrents = make_torrents(downloads, 3, missing_in=[1])
    client = Transmission(root / "config", downloads)
    client.start()
    try:
        ids = [client.add(t) for t in torrents]
        client.settle(3)
        client.rpc("torrent-set", {"ids": [ids[1]], "files-unwanted": [2], "labels": ["tv", "x"]})
        client.rpc("torrent-set", {"ids": [ids[2]], "priority-high": [0], "labels": ["movies"]})
        client.rpc("torrent-stop", {"ids": [ids[0]]})
        wait_for(lambda: client.torrents()[torrents[0].info_hash]["status"] == 0, "the stop", 30)
        expected = {
            h: Expected(
                name=torrents[[t.info_hash for t in torrents].index(h)].name,
                downloaded=int(t["haveValid"]),
                total=int(t["sizeWhenDone"]),
                paused=t["status"] == 0,
                priorities=tuple(
                    TR_PRIORITY[p] if wanted else 0 for p, wanted in zip(t["priorities"], t["wanted"], strict=True)
                ),
                labels=tuple(sorted(t["labels"])),
            )
            for h, t in client.torrents().items()
        }
    finally:
        client.stop()
    return checked_state(client.config, downloads, expected)


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, pg_schema: str, tr_state: State) -> Settings:
    return state_settings(tmp_path, pg_url, pg_schema, tr_state)


@pytest.mark.postgres
@pytest.mark.slow
def test_an_import_without_a_daemon_is_restored_at_the_next_run_with_its_progress_and_no_recheck(
    settings: Settings, tmp_path: Path, tr_state: State, capsys: pytest.CaptureFixture[str]
) -> None:
    import_offline(settings, tmp_path, "transmission", tr_state, lambda: capsys.readouterr().out)


@pytest.mark.postgres
@pytest.mark.slow
def test_an_import_goes_through_the_running_daemons_add(
    settings: Settings, tmp_path: Path, tr_state: State, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, expected = tr_state
    with running_daemon(settings) as daemon:
        config = config_for(tmp_path / "revaer.toml", settings)
        assert main(["--config", str(config), "import", "transmission", str(folder), "--json"]) == 0
        assert '"imported": 3' in capsys.readouterr().out
        check_engine(daemon, expected)


@pytest.mark.postgres
@pytest.mark.slow
def test_corrupt_orphan_and_moved_torrents_are_each_named_and_nothing_is_stored(
    settings: Settings, tmp_path: Path, tr_state: State, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shutil.copytree(tr_state[0], tmp_path / "config")
    resumes = sorted((folder / "resume").glob("*.resume"))
    resumes[0].write_bytes(b"\x00garbage")
    resumes[1].unlink()  # its .torrent is left without a .resume
    moved = bdecode(resumes[2].read_bytes())
    moved[b"destination"] = str(tmp_path / "gone").encode()
    resumes[2].write_bytes(bytes(lt.bencode(moved)))
    migrated(settings)
    config = config_for(tmp_path / "revaer.toml", settings)
    assert main(["--config", str(config), "import", "transmission", str(folder), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert f"skipped {resumes[0]}: corrupt" in captured.err
    assert "no .resume beside it" in captured.err
    assert f"skipped {resumes[2]}: its save path {tmp_path / 'gone'} no longer exists" in captured.err
    assert "would import 0, already there 0, skipped 3" in captured.out
    store = open_store(settings.runtime, StoreRole.CLIENT)
    try:
        assert store.load_torrents() == [], "a dry run stored something"
    finally:
        store.close()


def test_a_folder_without_resume_and_torrents_is_one_error_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.json").write_text("{}")
    assert main(["import", "transmission", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no resume/ and torrents/ folders" in err[0]


def test_a_block_bitfield_counts_a_piece_only_when_all_its_blocks_are_there() -> None:
    # 32 KiB pieces hold two 16 KiB blocks; blocks 0, 1, 2 of 6: piece 0 whole, piece 1 half, piece 2 none
    assert pieces_had({b"blocks": bytes([0b11100000])}, 3, 32 * 1024, 96 * 1024) == [True, False, False]
    assert pieces_had({b"have": b"all"}, 2, 16 * 1024, 20 * 1024) == [True, True]
    assert pieces_had({b"blocks": b"none"}, 2, 16 * 1024, 20 * 1024) == [False, False]


@pytest.mark.postgres
@pytest.mark.slow
def test_an_import_through_revaer_run_survives_a_kill_9_right_after_without_a_recheck(
    settings: Settings, tmp_path: Path, tr_state: State, daemons: Daemons, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, expected = tr_state
    config = config_for(tmp_path / "revaer.toml", settings)
    running = daemons(config=config, product=True)
    running.wait_running()
    assert main(["--config", str(config), "import", "transmission", str(folder)]) == 0
    assert "imported 3" in capsys.readouterr().out
    running.kill()  # before its first resume-data save: the import's own resume data must carry the progress

    check_restored(settings, expected)
