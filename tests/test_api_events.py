"""GET /v1/events over a real socket: replay after Last-Event-ID, live events, resync when the ring lost some."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import httpx
import pytest

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.api.server import ApiServer
from revaer_core.bus import EventBus
from revaer_core.errors import RevaerError
from revaer_core.events import FsOpsFailed, TorrentAdded
from tests.support.stores import SECRET, SECRET_DSN
from tests.support.surfaces import problem


@attrs.frozen
class Message:
    """One server-sent event as a client sees it."""

    id: str | None
    event: str | None
    data: Any
    comment: str | None = None


def messages(response: httpx.Response) -> Iterator[Message]:
    """Parse the stream into messages (comments included), as an EventSource would."""
    return messages_of(response.iter_lines())


def messages_of(lines: Iterable[str]) -> Iterator[Message]:
    """Messages from the lines of a stream."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                data = fields.get("data")
                yield Message(
                    id=fields.get("id"),
                    event=fields.get("event"),
                    data=None if data is None else json.loads(data),
                    comment=fields.get(""),
                )
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value


def take(stream: Iterator[Message], count: int) -> list[Message]:
    """The next ``count`` messages of ``stream`` that are events (not keep-alive comments)."""
    taken: list[Message] = []
    for message in stream:
        if message.event is not None:
            taken.append(message)
        if len(taken) == count:
            return taken
    raise AssertionError(f"stream ended after {len(taken)} of {count} events")


def added(n: int) -> TorrentAdded:
    return TorrentAdded(torrent_id=uuid.UUID(int=n), name=f"t{n}")


@pytest.fixture
def bus() -> EventBus:
    return EventBus(capacity=4)


@pytest.fixture
def server(store: RuntimeStore, bus: EventBus) -> Iterator[ApiServer]:
    with ApiServer(create_app(store, bus=bus, heartbeat=0.2), host="127.0.0.1", port=0, grace=1) as running:
        yield running


@pytest.fixture
def http(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=httpx.Timeout(10.0)) as client:
        yield client


def test_resume_after_last_event_id_then_follow_live(http: httpx.Client, bus: EventBus) -> None:
    for n in range(1, 4):
        bus.publish(added(n))
    with http.stream("GET", "/v1/events", headers={"Last-Event-ID": "1"}) as response:
        stream = messages(response)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        replayed = take(stream, 2)
        assert [(m.id, m.event) for m in replayed] == [("2", "torrent_added"), ("3", "torrent_added")]
        assert replayed[0].data["payload"] == {
            "torrent_id": str(uuid.UUID(int=2)),
            "name": "t2",
            "download_dir": None,
            "info_hash": None,
        }
        assert replayed[0].data["kind"] == "torrent_added" and replayed[0].data["id"] == 2

        threading.Timer(0.1, bus.publish, args=(FsOpsFailed(torrent_id=uuid.UUID(int=2), message=SECRET_DSN),)).start()
        (live,) = take(stream, 1)
        assert (live.id, live.event) == ("4", "fsops_failed")
        assert SECRET not in live.data["payload"]["message"]


def test_the_after_query_parameter_resumes_too(http: httpx.Client, bus: EventBus) -> None:
    for n in range(1, 4):
        bus.publish(added(n))
    with http.stream("GET", "/v1/events", params={"after": "2"}) as response:
        stream = messages(response)
        assert [m.id for m in take(stream, 1)] == ["3"]


def test_a_client_that_missed_events_is_told_to_resync(http: httpx.Client, bus: EventBus) -> None:
    for n in range(1, 11):
        bus.publish(added(n))  # the ring keeps 7..10
    with http.stream("GET", "/v1/events", headers={"Last-Event-ID": "2"}) as response:
        stream = messages(response)
        resync, *rest = take(stream, 5)
        assert resync.event == "resync"
        assert resync.data["dropped"] == 4  # events 3..6
        assert [m.id for m in rest] == ["7", "8", "9", "10"]


def test_an_id_from_an_earlier_run_asks_for_a_resync(http: httpx.Client, bus: EventBus) -> None:
    bus.publish(added(1))
    with http.stream("GET", "/v1/events", headers={"Last-Event-ID": "500"}) as response:
        stream = messages(response)
        (resync,) = take(stream, 1)
        assert (resync.event, resync.id) == ("resync", "1")
        threading.Timer(0.1, bus.publish, args=(added(2),)).start()
        assert [m.id for m in take(stream, 1)] == ["2"]


def test_an_idle_stream_sends_keep_alive_comments(http: httpx.Client) -> None:
    with http.stream("GET", "/v1/events") as response:
        first = next(messages(response))
        assert first.event is None and first.comment == "keep-alive"


def test_a_bad_last_event_id_is_a_problem(http: httpx.Client) -> None:
    response = http.get("/v1/events", headers={"Last-Event-ID": "-3"})
    assert response.status_code == 400
    problem(response.json(), 400)


def test_an_api_without_a_bus_says_where_events_are(store: RuntimeStore) -> None:
    with ApiServer(create_app(store), host="127.0.0.1", port=0) as server:
        response = httpx.get(f"{server.url}/v1/events", timeout=10)
    assert response.status_code == 503
    assert "revaer run" in response.json()["detail"]


def test_stopping_the_server_ends_open_streams(store: RuntimeStore, bus: EventBus) -> None:
    server = ApiServer(create_app(store, bus=bus, heartbeat=0.2), host="127.0.0.1", port=0, grace=1)
    server.start()
    opened = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{server.url}/v1/events", timeout=30) as response:
                opened.set()
                for _ in response.iter_lines():
                    pass
        except httpx.HTTPError:
            pass  # the server cut the stream: also an end

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10)
    started = time.monotonic()
    server.stop(timeout=20)
    reader.join(20)
    assert not reader.is_alive()
    assert time.monotonic() - started < 15  # bounded by the grace period, not by the client


def test_a_port_in_use_is_one_clear_error(store: RuntimeStore) -> None:
    with ApiServer(create_app(store), host="127.0.0.1", port=0) as first, pytest.raises(RevaerError) as caught:
        ApiServer(create_app(store), host="127.0.0.1", port=first.port)
    assert f"127.0.0.1:{first.port}" in str(caught.value)
