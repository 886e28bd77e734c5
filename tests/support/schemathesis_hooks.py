"""Schemathesis checks for Revaer's API: two built-in checks, narrowed where they are wrong for documented behaviour.

Loaded by ``st run`` through ``SCHEMATHESIS_HOOKS`` (see ``tests/test_api_schemathesis.py``),
which runs every other check as it is and these two in place of
``not_a_server_error`` and ``positive_data_acceptance``. Each exception below
is one documented answer that JSON Schema cannot state, matched by operation,
status and the problem's own words; any other answer fails as the built-in check would.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance


@attrs.frozen
class Documented:
    """A refusal the document states but its schemas cannot: the operations, the status, the detail, and why."""

    operations: frozenset[str]
    status: int
    detail: re.Pattern[str]
    why: str

    def covers(self, case: Any, response: Any) -> bool:
        if case.operation.definition.raw.get("operationId") not in self.operations:
            return False
        if response.status_code != self.status or not response.headers.get("content-type", [""])[0].startswith(
            "application/problem+json"
        ):
            return False
        return bool(self.detail.search(str(response.json().get("detail", ""))))


def _documented(operations: str, status: int, detail: str, why: str) -> Documented:
    return Documented(frozenset(operations.split()), status, re.compile(detail), why)


#: 5xx answers that are documented behaviour, not server errors.
SERVER_ANSWERS = (
    _documented(
        "streamEvents addTorrent removeTorrent pauseTorrent resumeTorrent recheckTorrent reannounceTorrent "
        "setTorrentOptions setTorrentFiles",
        503,
        r"revaer api|revaer run",
        "a stand-alone `revaer api` serves the store only: live events and every action on a torrent answer 503 "
        "naming `revaer run`, as their 503 entries say",
    ),
)

#: 4xx answers to schema-valid requests that are documented behaviour.
REFUSALS = (
    _documented(
        "listTorrents listJobs",
        400,
        r"^cursor is not one this server issued|^the cursor belongs to another sort order|^cursor does not belong",
        "a cursor is opaque: the schema states its alphabet and length, but only one this API issued (for the same "
        "sort order) names a position; a forged one is refused with 400 before any store sees it",
    ),
    _documented(
        "addTorrent",
        400,
        r"not a valid|\.torrent|magnet|info-hash|base64|exactly one of|resume_data|multipart add|cannot add from"
        r"|bencod|metainfo",
        "JSON Schema cannot say what a bencoded .torrent, base64 metainfo or a magnet link is: a body of the right "
        "shape holding something else is refused with 400",
    ),
    _documented(
        "addTorrent",
        422,
        r"allowed roots|save path|file \d+|files? index",
        "the save path must lie inside `[engine] allowed_save_roots` and a file index inside the torrent, both known "
        "only at run time; refused with 422",
    ),
    _documented(
        "addTorrent setTorrentOptions",
        400,
        r"^label .* (must be 1 to \d+ characters|holds a control character)|labels given; the most",
        "labels are stripped and must hold no Unicode control or format character (category C), which the regular "
        "expressions of JSON Schema cannot name; at most 32 distinct labels, counted after repeats are dropped",
    ),
    _documented(
        "setTorrentOptions setTorrentFiles",
        400,
        r"^nothing to change",
        "a change that names nothing to change (every key absent, null or empty) is refused with 400; the schema "
        "could ask for one property, but not that a null or an empty list changes nothing",
    ),
    _documented(
        "setTorrentFiles",
        422,
        r"file \d+|files? index|index \d+",
        "a file index must be one of the torrent's files, which the schema cannot know; refused with 422",
    ),
)


def _narrowed(check: Any, documented: tuple[Documented, ...], case: Any, response: Any, ctx: Any) -> bool | None:
    try:
        result: bool | None = check(ctx, response, case)
    except AssertionError:
        if any(d.covers(case, response) for d in documented):
            return None
        raise
    return result


@schemathesis.check
def revaer_not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """``not_a_server_error``, but for the 503s of :data:`SERVER_ANSWERS`."""
    return _narrowed(not_a_server_error, SERVER_ANSWERS, case, response, ctx)


@schemathesis.check
def revaer_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """``positive_data_acceptance``, but for the refusals of :data:`REFUSALS`."""
    return _narrowed(positive_data_acceptance, REFUSALS, case, response, ctx)
