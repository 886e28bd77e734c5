"""The OpenAPI document: served by the app, committed in docs/openapi.json, and the two agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from revaer_core.api.openapi import main, openapi_document, render

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def test_the_committed_document_matches_the_app() -> None:
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == openapi_document(), (
        "docs/openapi.json is stale: run `nox -s openapi` (python -m revaer_core.api.openapi docs/openapi.json)"
    )
    assert COMMITTED.read_text(encoding="utf-8") == render()


def test_the_served_document_is_the_committed_one(api: TestClient[Any]) -> None:
    """``revaer api`` serves the committed document but for the torrent ids it takes: UUIDs, never prefixes."""
    served = api.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == openapi_document(standalone=True)
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    uuid_only = openapi_document()["paths"]["/v1/fsops/jobs/{torrent_id}"]["get"]["parameters"]
    for path, item in committed["paths"].items():
        for method, operation in item.items():
            if "{torrent_id}" in path:
                operation["parameters"] = [
                    uuid_only[0] if p["name"] == "torrent_id" else p for p in operation["parameters"]
                ]
            assert served.json()["paths"][path][method] == operation, f"{method.upper()} {path}"


def test_options_names_every_method_of_a_path(api: TestClient[Any]) -> None:
    for path, methods in openapi_document()["paths"].items():
        allow = api.options(path.replace("{torrent_id}", "123e4567-e89b-12d3-a456-426614174000")).headers["allow"]
        assert set(allow.split(", ")) == {m.upper() for m in methods} | {"OPTIONS"}, path


def test_every_endpoint_and_problem_is_documented() -> None:
    document = openapi_document()
    assert set(document["paths"]) == {
        "/v1/torrents",
        "/v1/torrents/{torrent_id}",
        "/v1/torrents/{torrent_id}/files",
        "/v1/torrents/{torrent_id}/pause",
        "/v1/torrents/{torrent_id}/resume",
        "/v1/torrents/{torrent_id}/recheck",
        "/v1/torrents/{torrent_id}/reannounce",
        "/v1/fsops/jobs",
        "/v1/fsops/jobs/{torrent_id}",
        "/v1/fsops/jobs/{torrent_id}/retry",
        "/v1/events",
        "/health",
        "/metrics",
    }
    retry = document["paths"]["/v1/fsops/jobs/{torrent_id}/retry"]["post"]
    assert retry["responses"]["409"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert {"bearer": []} in retry["security"]
    add = document["paths"]["/v1/torrents"]["post"]
    assert {"201", "413", "422"} <= set(add["responses"]) and {"bearer": []} in add["security"]
    states = document["components"]["schemas"]["TorrentState"]["enum"]
    assert "fetching_metadata" in states


def test_the_regeneration_script_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render()
    assert main([]) == 2
