"""What a problem document echoes of a caller's input is bounded and escaped; forged cursors are refused alike."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core.api.app import MAX_ECHO, bounded
from revaer_core.query import Cursor, InvalidQuery, TorrentQuery, TorrentSort
from tests.support.surfaces import problem


def test_a_huge_id_gives_a_small_answer(api: TestClient[Any]) -> None:
    answer = api.get("/v1/torrents/" + "x" * 20_000)
    assert answer.status_code == 400
    assert len(answer.content) < 2 * MAX_ECHO + 600, len(answer.content)
    body = answer.json()
    assert "more characters" in body["detail"] and len(body["instance"]) < 300


def test_non_ascii_and_control_characters_are_escaped(api: TestClient[Any]) -> None:
    answer = api.get("/v1/torrents/%C3%BC%1B%5B31m")
    body = answer.json()
    assert answer.status_code == 400
    assert body["detail"].isascii() and "\x1b" not in body["detail"] and "\\x1b" in body["detail"]
    assert "\\xfc" in body["detail"] and body["instance"].isascii()


def test_bounded_keeps_short_plain_text_as_it_is() -> None:
    assert bounded("no torrent with id 1234") == "no torrent with id 1234"
    assert bounded("a" * 10, limit=4) == "aaaa... (6 more characters)"


def forged(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        forged("added:asc", "2026-01-01T00:00:00+00:00\u0000", "00000000-0000-0000-0000-000000000001"),
        forged("added:asc", "\ud800", "00000000-0000-0000-0000-000000000001"),
        forged("added:asc", 12, "00000000-0000-0000-0000-000000000001"),
        forged("added:asc", ["x"], "00000000-0000-0000-0000-000000000001"),
        forged("added:asc", "2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000001"),  # naive
        forged("added:asc", "2026-01-01T00:00:00+00:00", "not-a-uuid"),
        "A" * 9000,
    ],
)
def test_forged_cursors_are_refused_before_any_store(api: TestClient[Any], token: str) -> None:
    answer = api.get("/v1/torrents", params={"cursor": token})
    assert answer.status_code == 400, answer.text
    problem(answer.json(), 400)
    assert "start from the first page" in answer.json()["detail"]
    with pytest.raises(InvalidQuery):
        TorrentQuery(sort=TorrentSort.ADDED, after=Cursor.decode(token)).after_key()
