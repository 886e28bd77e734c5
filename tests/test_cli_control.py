"""``revaer torrents add|remove|pause|resume|select|set|files`` and ``fsops retry`` against a real daemon.

The daemon runs in process (simulated engine, memory store) with its API on a
free port; the CLI finds it from a settings file, with the token the daemon
left in its data dir, exactly as it would in use. Every test checks what the
daemon holds afterwards (store, catalog, engine), not only what was printed.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from revaer_core import AddedVia, JobStatus, TorrentState
from revaer_core.cli.control import RATE
from revaer_core.control.metainfo import TorrentInfo, read_magnet, read_metainfo
from revaer_core.settings import FsOpsSettings
from revaer_core.status import TorrentStatus
from revaer_core.testing.process import child_env, revaer, write_config
from revaer_core.testing.waiting import wait_for
from tests.support.cli_daemon import Cli, LiveDaemon, start_daemon, torrent_file

MAGNET = "magnet:?xt=urn:btih:" + "c0ffee" * 6 + "c0ff&dn=Film"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveDaemon]:
    running = start_daemon(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], live: LiveDaemon) -> Cli:
    """``revaer --config <the live daemon's settings>``, with the daemon's store for commands that read it."""
    return Cli(capsys, live.config, live.store)


def stored(live: LiveDaemon, torrent_id: uuid.UUID) -> TorrentStatus:
    status = live.store.get_torrent(torrent_id)
    assert status is not None, f"torrent {torrent_id} is not in the store"
    return status


def add_file(cli: Cli, tmp_path: Path, *options: str, name: str = "show") -> TorrentInfo:
    path = torrent_file(tmp_path, name)
    done = cli("torrents", "add", str(path), *options)
    assert done.code == 0, done.err
    return read_metainfo(path.read_bytes())


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("revaer: error: "), err
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- add ------------------------------------------------------------------------------------------------------


def test_add_a_file_with_choices_stores_them_as_added_via_the_cli(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    path = torrent_file(tmp_path)
    info = read_metainfo(path.read_bytes())
    done = cli(
        "torrents", "add", str(path), "--paused", "--label", "tv", "--label", "hd", "--skip-file", "1",
        "--priority", "2=7", "--upload-limit", "32K",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert done.out == f"added {info.torrent_id} show (paused)\n"
    assert done.err == ""

    status = stored(live, info.torrent_id)
    assert status.paused and status.labels == ("hd", "tv") and status.upload_limit == 32 * 1024
    assert [f.priority for f in status.files or ()] == [4, 0, 7]
    assert status.download_dir == str(live.downloads)
    source = live.store.load_torrent_sources()[info.torrent_id]
    assert source.metainfo == info.metainfo and source.added_via is AddedVia.CLI
    options = live.engine.options(info.torrent_id)
    assert options is not None and options.paused and options.upload_limit == 32 * 1024
    assert [(a.action, a.via) for a in live.actions()] == [("added", "cli")]


def test_adding_it_again_says_already_there_and_changes_nothing(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path, "--paused", "--label", "tv")
    again = cli("torrents", "add", str(tmp_path / "show.torrent"), "--label", "film")
    assert again.code == 0, again.err
    assert again.out == f"already there {info.torrent_id} show (stopped; left as it was)\n"
    status = stored(live, info.torrent_id)
    assert status.paused and status.labels == ("tv",)

    as_json = json.loads(cli("torrents", "add", str(tmp_path / "show.torrent"), "--json").out)
    assert as_json["id"] == str(info.torrent_id) and as_json["labels"] == ["tv"] and as_json["paused"] is True
    assert [a.action for a in live.actions()] == ["added"]


def test_add_a_magnet_prints_the_api_json(cli: Cli, live: LiveDaemon) -> None:
    info = read_magnet(MAGNET)
    done = cli(
        "torrents", "add", MAGNET, "--sequential", "--download-limit", "1.5M", "--label", "film", "--json"
    )  # fmt: skip
    assert done.code == 0, done.err
    body = json.loads(done.out)
    assert (body["id"], body["name"], body["info_hash"]) == (str(info.torrent_id), "Film", info.info_hash)
    assert (body["sequential"], body["download_limit"], body["labels"]) == (True, 1536 * 1024, ["film"])
    assert body["state"] == TorrentState.FETCHING_METADATA.value and body["files"] is None

    status = stored(live, info.torrent_id)
    assert status.sequential and status.download_limit == 1536 * 1024 and status.labels == ("film",)
    source = live.store.load_torrent_sources()[info.torrent_id]
    assert source.magnet == MAGNET and source.metainfo is None and source.added_via is AddedVia.CLI


def test_several_at_once_each_is_tried_and_each_failure_is_one_line(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    good = torrent_file(tmp_path)
    junk = tmp_path / "junk.torrent"
    junk.write_text("these are not the bytes of a torrent\n")
    missing = tmp_path / "missing.torrent"
    no_hash = "magnet:?dn=NoHash"
    done = cli("torrents", "add", str(missing), str(junk), no_hash, str(good))
    assert done.code == 2
    torrent_id = read_metainfo(good.read_bytes()).torrent_id
    assert done.out == f"added {torrent_id} show\n"
    errors = done.err.splitlines()
    assert errors[0] == f"revaer: error: {missing}: no such file (give a .torrent file or a magnet link)"
    assert errors[1].startswith(f"revaer: error: {junk}: not a valid torrent file")
    assert errors[2].startswith(f"revaer: error: {no_hash}: magnet link has no BitTorrent info-hash")
    assert len(errors) == 3
    assert set(live.controller.catalog) == {torrent_id}


def test_several_as_json_is_an_array_of_what_was_added(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    path = torrent_file(tmp_path)
    done = cli("torrents", "add", str(path), MAGNET, "--paused", "--json")
    assert done.code == 0, done.err
    body = json.loads(done.out)
    assert [item["id"] for item in body] == [
        str(read_metainfo(path.read_bytes()).torrent_id),
        str(read_magnet(MAGNET).torrent_id),
    ]
    assert all(item["paused"] for item in body)
    assert len(live.controller.catalog) == 2


def test_a_relative_save_path_is_taken_from_the_current_directory(
    cli: Cli, live: LiveDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    (live.root / "elsewhere").mkdir()
    monkeypatch.chdir(live.root)
    done = cli("torrents", "add", MAGNET, "--save-path", "elsewhere/films")
    assert done.code == 0, done.err
    assert stored(live, read_magnet(MAGNET).torrent_id).download_dir == str(live.root / "elsewhere" / "films")


def test_a_save_path_outside_the_roots_is_refused(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    outside = tmp_path.parent / "outside"
    done = cli("torrents", "add", MAGNET, "--save-path", str(outside))
    assert done.code == 2
    line = one_error_line(done.err)
    assert f"save path '{outside}' is outside the allowed roots" in line and "allowed_save_roots" in line
    assert done.out == ""
    assert len(live.controller.catalog) == 0 and live.store.get_torrent(read_magnet(MAGNET).torrent_id) is None


def test_a_pad_file_or_a_file_out_of_range_is_refused(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    path = torrent_file(tmp_path)
    expected = "out of range: its 3 file(s) are numbered 0 to 2"
    pad = cli("torrents", "add", str(path), "--skip-file", "3")  # index 3 is the trailing alignment padding
    assert pad.code == 2 and f"file index 3 is {expected}" in one_error_line(pad.err)
    beyond = cli("torrents", "add", str(path), "--priority", "9=1")
    assert beyond.code == 2 and f"file index 9 is {expected}" in one_error_line(beyond.err)
    assert len(live.controller.catalog) == 0


@pytest.mark.parametrize("value", ["-1", "-1K", "fast", "1.5", "0.0000001K", "1e6", "5T"])
def test_a_bad_rate_is_a_usage_error_naming_the_option(cli: Cli, live: LiveDaemon, value: str) -> None:
    done = cli("torrents", "add", MAGNET, "--download-limit", value)
    assert done.code == 2
    line = one_error_line(done.err)
    assert "'--download-limit'" in line and repr(value) in line
    assert len(live.controller.catalog) == 0


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("0", 0),
        ("none", 0),
        ("Unlimited", 0),
        ("1000", 1000),
        ("500K", 500 * 1024),
        ("500kb", 500 * 1024),
        ("64KiB", 64 * 1024),
        ("1.5M", 1536 * 1024),
        ("2G", 2 * 1024**3),
        ("10K/s", 10 * 1024),
        ("100B", 100),
    ],
)
def test_rates_are_bytes_per_second_in_powers_of_1024(text: str, rate: int) -> None:
    assert RATE.convert(text, None, None) == rate


# -- acting on a torrent ----------------------------------------------------------------------------------------


def test_pause_and_resume_by_a_prefix_of_the_info_hash(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path)
    ref = info.info_hash[:8]
    paused = cli("torrents", "pause", ref)
    assert paused.code == 0, paused.err
    assert paused.out == f"paused {info.torrent_id} show\n"
    assert stored(live, info.torrent_id).paused
    options = live.engine.options(info.torrent_id)
    assert options is not None and options.paused
    catalog = live.controller.catalog
    wait_for(lambda: catalog[info.torrent_id].state is TorrentState.STOPPED, "the paused torrent to stop")

    resumed = cli("torrents", "resume", str(info.torrent_id)[:6], "--json")
    assert resumed.code == 0, resumed.err
    assert json.loads(resumed.out)["paused"] is False
    assert not stored(live, info.torrent_id).paused
    assert [(a.action, a.via) for a in live.actions()][1:] == [("paused", "cli"), ("resumed", "cli")]


def test_an_action_on_several_ids_reports_the_unknown_one_and_does_the_rest(
    cli: Cli, live: LiveDaemon, tmp_path: Path
) -> None:
    first = add_file(cli, tmp_path, name="first")
    second = add_file(cli, tmp_path, name="second")
    unknown = str(uuid.UUID(int=5))
    done = cli("torrents", "pause", str(first.torrent_id), unknown, second.info_hash[:10], "--json")
    assert done.code == 2
    assert [item["id"] for item in json.loads(done.out)] == [str(first.torrent_id), str(second.torrent_id)]
    assert (
        one_error_line(done.err)
        == f"revaer: error: {unknown}: no torrent matches '{unknown}' (see 'revaer torrents list')"
    )
    assert stored(live, first.torrent_id).paused and stored(live, second.torrent_id).paused


def test_an_ambiguous_prefix_or_a_malformed_id_is_refused(cli: Cli, live: LiveDaemon) -> None:
    for digit in "12":
        magnet = f"magnet:?xt=urn:btih:abcd{digit}{'0' * 35}"
        assert cli("torrents", "add", magnet).code == 0
    ambiguous = cli("torrents", "pause", "abcd")
    assert ambiguous.code == 2
    assert "'abcd' matches 2 torrents" in one_error_line(ambiguous.err) and "give more characters" in ambiguous.err
    for ref in ("xyz", "a/b", "", "ab"):
        refused = cli("torrents", "recheck", ref)
        assert refused.code == 2, ref
        assert "is not a torrent id" in one_error_line(refused.err), ref
    assert not any(s.paused for s in live.controller.catalog.values())
    assert cli("torrents", "pause", "abcd1").code == 0


def test_recheck_and_reannounce(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path)
    assert cli("torrents", "recheck", str(info.torrent_id)).out == f"rechecking {info.torrent_id} show\n"
    assert cli("torrents", "reannounce", str(info.torrent_id)).out == f"reannounced {info.torrent_id} show\n"
    assert [a.action for a in live.actions()] == ["added", "rechecked", "reannounced"]


def test_set_changes_only_what_is_given(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path, "--label", "old")
    ref = str(info.torrent_id)
    done = cli("torrents", "set", ref, "--sequential", "--download-limit", "64K", "--upload-limit", "32K")
    assert done.code == 0, done.err
    assert done.out == f"changed {ref} show: sequential on, download limit 64.0 KiB/s, upload limit 32.0 KiB/s\n"
    status = stored(live, info.torrent_id)
    assert (status.sequential, status.download_limit, status.upload_limit) == (True, 64 * 1024, 32 * 1024)
    assert status.labels == ("old",)
    options = live.engine.options(info.torrent_id)
    assert options is not None and options.sequential and options.download_limit == 64 * 1024

    lifted = cli("torrents", "set", ref, "--download-limit", "none", "--label", "b", "--label", "a", "--json")
    assert lifted.code == 0, lifted.err
    body = json.loads(lifted.out)
    assert (body["download_limit"], body["upload_limit"], body["labels"]) == (None, 32 * 1024, ["a", "b"])
    cleared = cli("torrents", "set", ref, "--no-labels", "--no-sequential")
    assert cleared.out == f"changed {ref} show: sequential off, labels none\n"
    status = stored(live, info.torrent_id)
    assert (status.labels, status.sequential, status.download_limit) == ((), False, None)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "nothing to change"),
        (["--label", "a", "--no-labels"], "not both"),
        (["--upload-limit", "-3"], "'--upload-limit'"),
    ],
)
def test_set_refuses_nothing_or_a_contradiction(
    cli: Cli, live: LiveDaemon, tmp_path: Path, args: list[str], words: str
) -> None:
    info = add_file(cli, tmp_path, "--label", "kept")
    done = cli("torrents", "set", str(info.torrent_id), *args)
    assert done.code == 2 and words in one_error_line(done.err)
    assert stored(live, info.torrent_id).labels == ("kept",)


def test_select_skips_and_prioritises_files(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path)
    done = cli("torrents", "select", info.info_hash[:12], "--skip", "0", "--priority", "2=7")
    assert done.code == 0, done.err
    assert done.out == f"changed files of {info.torrent_id} show: 2 of 3 selected\n"
    assert [(f.priority, f.selected) for f in stored(live, info.torrent_id).files or ()] == [
        (0, False), (4, True), (7, True)
    ]  # fmt: skip
    options = live.engine.options(info.torrent_id)
    assert options is not None and tuple(options.file_priorities)[:3] == (0, 4, 7)

    again = cli("torrents", "select", str(info.torrent_id), "--priority", "0=4", "--json")
    assert [f["priority"] for f in json.loads(again.out)["files"]] == [4, 4, 7]

    for args, words in [
        (["--priority", "2=9"], "priority must be 0 (skip) to 7"),
        (["--skip", "3"], "file index 3 is out of range"),  # the pad file is not one of its files
        (["--priority", "two=1"], "'--priority'"),
        ([], "--skip N or --priority N=P"),
    ]:
        refused = cli("torrents", "select", str(info.torrent_id), *args)
        assert refused.code == 2, args
        assert words in one_error_line(refused.err), args
    assert [f.priority for f in stored(live, info.torrent_id).files or ()] == [4, 4, 7]


def test_files_lists_them_and_works_while_the_daemon_is_down(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path, "--paused", "--skip-file", "1")  # paused: nothing moves between the reads
    up = cli("torrents", "files", info.info_hash[:8])
    assert up.code == 0, up.err
    header, *rows = up.out.splitlines()
    assert header.split() == ["#", "SIZE", "DONE", "PRIORITY", "SELECTED", "PATH"]
    assert [row.split()[0] for row in rows] == ["0", "1", "2"]
    assert rows[1].split()[-3:] == ["0", "no", "show/extras/commentary.mp3"]
    as_json = json.loads(cli("torrents", "files", str(info.torrent_id), "--json").out)
    assert as_json == httpx.get(f"{live.url}/v1/torrents/{info.torrent_id}/files", timeout=10).json()

    live.stop()
    down = cli("torrents", "files", info.info_hash[:8])
    assert down.code == 0, down.err
    assert down.out == up.out
    assert down.err.strip() == f"revaer: no daemon answers at {live.url}; these are the files the store last saw"
    assert json.loads(cli("torrents", "files", str(info.torrent_id), "--json").out) == as_json


def test_files_of_a_magnet_without_metadata(cli: Cli, live: LiveDaemon) -> None:
    assert cli("torrents", "add", MAGNET, "--paused").code == 0
    torrent_id = read_magnet(MAGNET).torrent_id
    done = cli("torrents", "files", str(torrent_id))
    assert done.out == f"torrent {torrent_id} has no file list yet: its metadata has not arrived\n"
    assert json.loads(cli("torrents", "files", str(torrent_id), "--json").out)["files"] is None


def test_show_takes_a_prefix_and_reads_the_store(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path, "--label", "tv", "--download-limit", "1M")
    live.stop()
    shown = cli("torrents", "show", info.info_hash[:8])
    assert shown.code == 0, shown.err
    lines = [line.split() for line in shown.out.splitlines()]
    assert lines[0] == ["id", str(info.torrent_id)]
    assert ["info", "hash", info.info_hash] in lines and ["labels", "tv"] in lines
    assert ["download", "limit", "1.0", "MiB/s"] in lines and ["upload", "limit", "none"] in lines
    assert json.loads(cli("torrents", "show", str(info.torrent_id)[:8], "--json").out)["labels"] == ["tv"]


def test_remove_with_yes(cli: Cli, live: LiveDaemon, tmp_path: Path) -> None:
    info = add_file(cli, tmp_path)
    done = cli("torrents", "remove", info.info_hash[:8], "--yes")
    assert done.code == 0, done.err
    assert done.out == f"removed {info.torrent_id} show\n"
    assert live.store.get_torrent(info.torrent_id) is None
    assert info.torrent_id not in live.controller.catalog
    wait_for(lambda: not live.engine.has(info.torrent_id), "the engine to drop the torrent")
    assert [(a.action, a.via, dict(a.changes)) for a in live.actions()][1:] == [
        ("removed", "cli", {"with_data": "false"})
    ]


def test_remove_asks_first_and_no_keeps_it(
    cli: Cli, live: LiveDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = add_file(cli, tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    declined = cli("torrents", "remove", str(info.torrent_id), "--with-data")
    assert declined.code == 1
    assert f"{info.torrent_id} show" in declined.err and "delete their downloaded files" in declined.err
    assert "nothing removed" in declined.err
    assert live.store.get_torrent(info.torrent_id) is not None

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    unknown = str(uuid.UUID(int=9))
    accepted = cli("torrents", "remove", str(info.torrent_id), unknown)
    assert accepted.code == 2  # the unknown one
    assert accepted.out.strip() == f"removed {info.torrent_id} show"
    assert f"{unknown}: no torrent matches" in accepted.err
    assert live.store.get_torrent(info.torrent_id) is None


# -- the token, the address, no daemon ------------------------------------------------------------------------


def test_a_wrong_or_missing_token_is_refused_and_says_where_the_token_comes_from(
    cli: Cli, live: LiveDaemon, tmp_path: Path
) -> None:
    info = add_file(cli, tmp_path)
    port = live.daemon.api.port
    wrong = write_config(tmp_path / "wrong.toml", {"api": {"port": port, "token": "not-the-token"}})
    refused = cli("torrents", "pause", str(info.torrent_id), config=wrong)
    assert refused.code == 2
    line = one_error_line(refused.err)
    assert "refused the API token from [api] token / REVAER_API_TOKEN" in line
    assert "data dir (file api-token" in line

    elsewhere = write_config(
        tmp_path / "none.toml", {"runtime": {"data_dir": str(tmp_path / "x")}, "api": {"port": port}}
    )
    missing = cli("torrents", "pause", str(info.torrent_id), config=elsewhere)
    assert missing.code == 2
    assert f"none was found at {tmp_path / 'x' / 'api-token'}" in one_error_line(missing.err)
    assert not stored(live, info.torrent_id).paused


WILDCARDS = [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("127.0.0.1", "127.0.0.1")]  # noqa: S104 - addresses to read


@pytest.mark.parametrize(("host", "url_host"), WILDCARDS)
def test_no_daemon_names_the_address_it_tried(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, host: str, url_host: str
) -> None:
    port = free_port()
    config = write_config(tmp_path / "revaer.toml", {"api": {"host": host, "port": port, "token": "t"}})
    done = Cli(capsys, config)("torrents", "set", "abcd", "--sequential")
    assert done.code == 3
    assert one_error_line(done.err).startswith(f"revaer: error: no Revaer daemon answers at http://{url_host}:{port} (")
    assert done.err.rstrip().endswith("start one with 'revaer run'")


def test_no_daemon_exits_3_from_the_installed_command(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "revaer.toml", {"runtime": {"data_dir": str(tmp_path)}, "api": {"port": port}})
    done = revaer("torrents", "pause", "abcd", config=config)
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"revaer: error: no Revaer daemon answers at http://127.0.0.1:{port} (connection refused); "
        "start one with 'revaer run'"
    )


def test_the_control_commands_need_no_litestar(tmp_path: Path) -> None:
    """The CLI talks to the daemon with the standard library: it works without the api extra."""
    port = free_port()
    config = write_config(tmp_path / "revaer.toml", {"runtime": {"data_dir": str(tmp_path)}, "api": {"port": port}})
    script = (
        "import sys; sys.modules['litestar'] = None; sys.modules['uvicorn'] = None\n"
        "from revaer_core.cli import main\n"
        f"sys.exit(main(['--config', {str(config)!r}, 'torrents', 'add', {MAGNET!r}, '--paused']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_env(), timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "no Revaer daemon answers" in done.stderr and "Traceback" not in done.stderr


# -- fsops retry ----------------------------------------------------------------------------------------------


def failed_job(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[LiveDaemon, Cli, uuid.UUID]:
    """A daemon with FsOps on and one failed job: the torrent completed but its files are not on disk."""
    live = start_daemon(tmp_path, steps=2, fsops=FsOpsSettings(enabled=True, library_root=tmp_path / "library"))
    cli = Cli(capsys, live.config, live.store)
    torrent_id = add_file(cli, tmp_path).torrent_id

    def failed() -> bool:
        job = live.store.get_job(torrent_id)
        return job is not None and job.status is JobStatus.FAILED

    wait_for(failed, "the FsOps job to fail (the simulated engine writes no files)")
    return live, cli, torrent_id


def test_fsops_retry_through_the_daemon_runs_the_job_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    live, cli, torrent_id = failed_job(capsys, tmp_path)
    try:
        shutil.copytree(tmp_path / "payload-show" / "show", live.downloads / "show")  # the files are there now
        done = cli("fsops", "retry", str(torrent_id))
        assert done.code == 0, done.err
        assert done.out.startswith(f"job of torrent {torrent_id} is ")
        assert "the running daemon starts it now" in done.out

        def moved() -> bool:
            job = live.store.get_job(torrent_id)
            return job is not None and job.status is JobStatus.MOVED

        wait_for(moved, "the retried job to move the files")
        job = live.store.get_job(torrent_id)
        assert job is not None and job.attempt == 2
        assert (tmp_path / "library" / "show" / "episode-01.mkv").is_file()
        assert ("fsops_retried", "cli") in [(a.action, a.via) for a in live.actions()]
        refused = cli("fsops", "retry", str(torrent_id))
        assert refused.code == 2 and "only a failed job can be retried" in one_error_line(refused.err)
    finally:
        live.stop()


def test_fsops_retry_without_a_daemon_leaves_it_for_the_next_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    live, cli, torrent_id = failed_job(capsys, tmp_path)
    live.stop()
    done = cli("fsops", "retry", str(torrent_id))
    assert done.code == 0, done.err
    assert done.out == (
        f"job of torrent {torrent_id} is pending after 1 attempt(s): "
        "no daemon answers, so it runs at the daemon's next start ('revaer run')\n"
    )
    job = live.store.get_job(torrent_id)
    assert job is not None and (job.status, job.attempt) == (JobStatus.PENDING, 1)
