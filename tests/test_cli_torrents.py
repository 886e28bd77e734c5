"""``revaer torrents``: tables, --json in the API's shapes, paging, filters and exit codes."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore, TorrentState
from revaer_core.api.models import public_json
from revaer_core.store import RuntimeStore as Store
from tests.support.stores import SECRET, FaultyStore
from tests.support.surfaces import CliRunner, seed_torrents


def test_list_prints_an_aligned_table(revaer: CliRunner, store: RuntimeStore) -> None:
    statuses = seed_torrents(store, 3)
    result = revaer("torrents", "list")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == ["ID", "STATE", "PROGRESS", "SIZE", "ADDED", "NAME"]
    assert len(rows) == 3
    assert {header.index("STATE")} == {row.index(s.state.value) for row, s in zip(rows, statuses, strict=True)}
    assert rows[0].startswith(str(statuses[0].id)) and rows[0].endswith(statuses[0].name or "")
    assert "0.0%" in rows[0] and "976.6 KiB" in rows[0]
    assert result.err == ""


def test_json_is_exactly_what_the_api_returns(revaer: CliRunner, store: RuntimeStore, api: TestClient[Any]) -> None:
    statuses = seed_torrents(store, 5)
    cli_page = json.loads(revaer("torrents", "list", "--limit", "2", "--sort", "name", "--json").out)
    api_page = api.get("/v1/torrents", params={"limit": 2, "sort": "name"}).json()
    assert cli_page == api_page
    assert cli_page["next_cursor"] is not None

    one = statuses[3]
    assert json.loads(revaer("torrents", "show", str(one.id), "--json").out) == api.get(f"/v1/torrents/{one.id}").json()
    assert json.loads(revaer("torrents", "show", str(one.id), "--json").out) == public_json(one)


def test_cursor_and_all_walk_every_page(revaer: CliRunner, store: RuntimeStore) -> None:
    statuses = seed_torrents(store, 7)
    first = revaer("torrents", "list", "--limit", "3", "--json")
    page = json.loads(first.out)
    second = json.loads(revaer("torrents", "list", "--limit", "3", "--cursor", page["next_cursor"], "--json").out)
    assert len(page["items"]) == len(second["items"]) == 3

    human = revaer("torrents", "list", "--limit", "3")
    assert f"--cursor {page['next_cursor']}" in human.err  # the hint, on stderr

    every = json.loads(revaer("torrents", "list", "--limit", "2", "--all", "--json").out)
    assert every["next_cursor"] is None
    ids = [item["id"] for item in every["items"]]
    assert len(ids) == len(set(ids)) == 7
    assert set(ids) == {str(s.id) for s in statuses}
    table = revaer("torrents", "list", "--limit", "2", "--all")
    assert len(table.out.splitlines()) == 8 and table.err == ""


def test_filters_and_sort(revaer: CliRunner, store: RuntimeStore) -> None:
    statuses = seed_torrents(store, 21)
    out = revaer("torrents", "list", "--state", "failed", "--state", "stopped", "--json").out
    wanted = {TorrentState.FAILED, TorrentState.STOPPED}
    assert {i["id"] for i in json.loads(out)["items"]} == {str(s.id) for s in statuses if s.state in wanted}

    out = revaer("torrents", "list", "--name", "ubuntu", "--sort", "name", "--desc", "--json").out
    names = [i["name"] for i in json.loads(out)["items"]]
    assert names == sorted((s.name or "" for s in statuses if "Ubuntu" in (s.name or "")), reverse=True)


def test_show_prints_fields_and_files(revaer: CliRunner, store: RuntimeStore) -> None:
    (status,) = seed_torrents(store, 1)
    result = revaer("torrents", "show", str(status.id))
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["id", str(status.id)]
    assert any(line.split()[:2] == ["state", "queued"] for line in lines)
    assert any("torrent-00000/payload.bin" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["torrents", "show", "not-a-uuid"], "is not a torrent id"),
        (["torrents", "show", str(uuid.UUID(int=99))], "no torrent with id"),
        (["torrents", "list", "--state", "sleeping"], "'sleeping' is not one of"),
        (["torrents", "list", "--limit", "0"], "--limit"),
        (["torrents", "list", "--cursor", "garbage!"], "cursor"),
        (["torrents", "list", "--bogus"], "No such option"),
    ],
)
def test_invalid_input_exits_2_with_one_line(revaer: CliRunner, args: list[str], words: str) -> None:
    result = revaer(*args)
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("revaer: error: ") and words in result.err


def test_a_store_failure_exits_3_with_one_redacted_line(revaer_faulty: tuple[CliRunner, FaultyStore]) -> None:
    revaer, plugin = revaer_faulty
    seed_torrents(revaer.store, 2)
    plugin.down = True
    for args in (["torrents", "list"], ["torrents", "show", str(uuid.UUID(int=1))], ["fsops", "jobs"]):
        result = revaer(*args)
        assert result.code == 3, args
        assert len(result.err.strip().splitlines()) == 1
        assert "runtime store failed" in result.err or "refused" in result.err
        assert SECRET not in result.err and "Traceback" not in result.err
    plugin.down = False
    assert revaer("torrents", "list").code == 0


def test_debug_shows_the_traceback_and_keeps_the_exit_code(revaer_faulty: tuple[CliRunner, FaultyStore]) -> None:
    revaer, plugin = revaer_faulty
    plugin.down = True
    plain, debug = revaer("torrents", "list"), revaer("--debug", "torrents", "list")
    assert plain.code == debug.code == 3
    assert "Traceback" in debug.err and "Traceback" not in plain.err
    last = [re.sub(r"incident [0-9a-f]+", "incident <id>", r.err.strip().splitlines()[-1]) for r in (plain, debug)]
    assert last[0] == last[1]  # the same error line, each naming its own incident
    assert SECRET not in debug.err


def test_no_store_lists_nothing_and_explains_a_missing_torrent(
    capsys: pytest.CaptureFixture[str], cli_settings: Any
) -> None:
    revaer = CliRunner(capsys, Store.none(), cli_settings)
    assert revaer("torrents", "list", "--json").out.strip() == json.dumps({"items": [], "next_cursor": None}, indent=2)
    missing = revaer("torrents", "show", str(uuid.UUID(int=3)))
    assert missing.code == 2 and "no runtime store selected" in missing.err
