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
from revaer_core.query import CURSOR_PATTERN, MAX_CURSOR_LENGTH, Cursor


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
    for message in one_of["oneOf"]:  # each an SSE message: its event name, and the schema of its data's JSON
        fields = message["properties"]
        assert fields["id"]["pattern"] == "^[0-9]{1,19}$" and fields["data"]["contentMediaType"] == "application/json"
        schema = schemas[fields["data"]["contentSchema"]["$ref"].rsplit("/", 1)[1]]
        if "kind" in schema["properties"]:
            assert schema["properties"]["kind"]["const"] == fields["event"]["const"]
            payload = schemas[schema["properties"]["payload"]["$ref"].rsplit("/", 1)[1]]
            kinds[fields["event"]["const"]] = payload
    assert set(kinds) == set(PAYLOAD_TYPES) and len(one_of["oneOf"]) == len(PAYLOAD_TYPES) + 1  # and resync
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


def test_a_cursor_outside_its_alphabet_is_refused(store: RuntimeStore) -> None:
    """base64 decoding skips characters outside its alphabet; a cursor is refused before it gets that far."""
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        issued = Cursor(value="2026-01-01T00:00:00+00:00", id=uuid.uuid4(), order="jobs").encode()
        assert re.fullmatch(CURSOR_PATTERN, issued)
        assert api.get("/v1/fsops/jobs", params={"cursor": issued}).status_code == 200
        for forged in (issued[:4] + "$" + issued[4:], issued + "\n", issued + "é", issued + "="):
            refused = api.get("/v1/fsops/jobs", params={"cursor": forged})
            assert refused.status_code == 400 and "cursor" in refused.json()["detail"], forged


def test_every_event_id_sent_is_checked(store: RuntimeStore) -> None:
    """The header wins when both are sent, but a malformed ``after`` beside it is refused, not ignored."""
    with TestClient(create_app(store, bus=EventBus()), base_url="http://127.0.0.1") as api:
        both = api.get("/v1/events", params={"after": ""}, headers={"Last-Event-ID": "0"})
        assert both.status_code == 400 and "after" in both.json()["detail"]
        header = api.get("/v1/events", params={"after": "0"}, headers={"Last-Event-ID": "null"})
        assert header.status_code == 400 and "Last-Event-ID" in header.json()["detail"]


def test_optional_text_parameters_are_never_null_in_the_document() -> None:
    """A text parameter documented as nullable gets the text "null" from a client; none is."""
    document = openapi_document()
    for path, item in document["paths"].items():
        for operation in item.values():
            for found in operation.get("parameters", []):
                members = found["schema"].get("oneOf", [])
                assert not any(m.get("type") == "string" for m in members), (path, found["name"])
