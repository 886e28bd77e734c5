"""The OpenAPI document states the limits the server enforces, and the server holds to what it states."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.api.openapi import openapi_document
from revaer_core.bus import EventBus
from revaer_core.events import PAYLOAD_TYPES
from revaer_core.query import MAX_CURSOR_LENGTH


def parameter(document: dict[str, Any], path: str, name: str, method: str = "get") -> dict[str, Any]:
    (found,) = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


def test_the_document_states_each_limit() -> None:
    document = openapi_document()
    assert parameter(document, "/v1/torrents", "name")["maxLength"] == 256
    for path in ("/v1/torrents", "/v1/fsops/jobs"):
        assert parameter(document, path, "cursor")["maxLength"] == MAX_CURSOR_LENGTH
    for name in ("after", "Last-Event-ID"):
        assert parameter(document, "/v1/events", name)["pattern"] == "^[0-9]{1,19}$"
    job_id = parameter(document, "/v1/fsops/jobs/{torrent_id}", "torrent_id")
    assert job_id["format"] == "uuid" and re.fullmatch(job_id["pattern"], str(uuid.uuid4()))
    assert not re.search(job_id["pattern"], "{" + str(uuid.uuid4()) + "}")
    assert "max_upload_bytes" in document["paths"]["/v1/torrents"]["post"]["description"]


def test_each_event_kind_has_its_own_payload_schema() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    one_of = document["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    kinds = {}
    for ref in one_of["oneOf"]:
        schema = schemas[ref["$ref"].rsplit("/", 1)[1]]
        if "kind" in schema["properties"]:
            payload = schemas[schema["properties"]["payload"]["$ref"].rsplit("/", 1)[1]]
            kinds[schema["properties"]["kind"]["const"]] = payload
    assert set(kinds) == set(PAYLOAD_TYPES)
    assert set(kinds["progress"]["properties"]) >= {"torrent_id", "downloaded", "total"}
    assert kinds["fsops_failed"]["required"] == ["message", "torrent_id"]


@pytest.mark.parametrize(
    "form",
    ["{%s}", "urn:uuid:%s", "hex", "%s-0"],
)
def test_only_the_canonical_uuid_form_is_taken(store: RuntimeStore, form: str) -> None:
    torrent = uuid.uuid4()
    odd = torrent.hex if form == "hex" else form % torrent
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        assert api.get(f"/v1/fsops/jobs/{odd}").status_code == 400
        assert api.get(f"/v1/torrents/{odd}").status_code == 400
        assert api.get(f"/v1/fsops/jobs/{str(torrent).upper()}").status_code == 404  # either case is one form


@pytest.mark.parametrize("after", [" 1", "1 ", "+1", "-1", "١٢", "1" * 20, "0x1"])
def test_event_ids_are_digits_only(store: RuntimeStore, after: str) -> None:
    with TestClient(create_app(store, bus=EventBus()), base_url="http://127.0.0.1") as api:
        assert api.get("/v1/events", params={"after": after}).status_code == 400
        if after.isascii():  # an HTTP client sends header values as ASCII
            assert api.get("/v1/events", headers={"Last-Event-ID": after + "x"}).status_code == 400


def test_a_name_past_its_limit_is_refused(store: RuntimeStore) -> None:
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        assert api.get("/v1/torrents", params={"name": "x" * 256}).status_code == 200
        refused = api.get("/v1/torrents", params={"name": "x" * 257})
        assert refused.status_code == 400 and "name" in refused.json()["detail"]
