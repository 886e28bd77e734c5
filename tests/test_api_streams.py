"""Many event streams: a bound with a clear 503, one bus subscription for all, a full replay in chunks."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.api.server import ApiServer
from revaer_core.api.stream import KEEPALIVE, QUEUE, WRITE_BUDGET, YIELD_TURNS, StreamHub, event_stream
from revaer_core.bus import EventBus
from revaer_core.events import TorrentAdded
from revaer_core.testing.waiting import wait_for
from tests.support.surfaces import problem
from tests.test_api_events import Message, messages, messages_of, take

LIMIT = 3


@pytest.fixture
def bus() -> EventBus:
    return EventBus(capacity=4096)


@pytest.fixture
def server(store: RuntimeStore, bus: EventBus) -> Iterator[ApiServer]:
    app = create_app(store, bus=bus, heartbeat=0.2, max_event_streams=LIMIT)
    with ApiServer(app, host="127.0.0.1", port=0, grace=1) as running:
        yield running


def test_streams_past_the_bound_get_a_clear_503_and_a_slot_frees_when_one_leaves(
    server: ApiServer, bus: EventBus
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client, contextlib.ExitStack() as held:
        opened = [held.enter_context(client.stream("GET", "/v1/events")) for _ in range(LIMIT)]
        try:
            assert all(r.status_code == 200 for r in opened)
            wait_for(lambda: len(bus._handlers) == 1, "the streams to share one bus subscription")
            refused = client.get("/v1/events")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            problem(refused.json(), 503)
            assert "max_event_streams" in refused.json()["detail"]
            assert client.get("/health").status_code == 200  # other requests are served meanwhile
            bus.publish(TorrentAdded(torrent_id=uuid.UUID(int=1), name="one"))
            for response in opened:
                assert take(messages(response), 1)[0].data["payload"]["name"] == "one"
        finally:
            opened.pop().close()

        def admitted() -> bool:
            with client.stream("GET", "/v1/events") as again:
                return again.status_code == 200

        wait_for(admitted, "a freed slot to admit a new stream")
        for response in opened:
            response.close()
    wait_for(lambda: not bus._handlers, "the last stream to drop the bus subscription")


def test_a_full_ring_is_replayed_whole_while_other_requests_are_served(server: ApiServer, bus: EventBus) -> None:
    for n in range(4096):
        bus.publish(TorrentAdded(torrent_id=uuid.UUID(int=n + 1), name=f"t{n}"))
    health: list[int] = []
    with httpx.Client(base_url=server.url, timeout=30) as client, client.stream("GET", "/v1/events") as stream:
        asker = threading.Thread(target=lambda: health.extend(client.get("/health").status_code for _ in range(5)))
        asker.start()
        replayed = take(messages(stream), 4096)
        asker.join(30)
    assert [int(m.id or 0) for m in replayed] == list(range(1, 4097))
    assert health == [200] * 5


def test_a_live_client_that_falls_a_queue_behind_gets_a_resync_and_loses_no_more() -> None:
    bus = EventBus(capacity=4096)

    async def scenario() -> list[bytes]:
        hub = StreamHub(bus, limit=1)
        stream = event_stream(hub, 0, heartbeat=0.05)
        seen = [await stream.__anext__()]  # caught up: a keep-alive, nothing to replay
        for n in range(QUEUE + 200):  # the client reads nothing meanwhile
            bus.publish(TorrentAdded(torrent_id=uuid.UUID(int=n + 1)))
        seen += [await stream.__anext__() for _ in range(2)]
        await stream.aclose()
        return seen

    keepalive, resync, following = asyncio.run(scenario())
    assert keepalive == KEEPALIVE
    (notice,) = parse(resync)
    assert notice.event == "resync" and "reads too slowly" in notice.data["reason"]
    assert notice.data["dropped"] == QUEUE + 200 - QUEUE // 2
    ids = [int(m.id or 0) for m in parse(following)]  # the rest, one write, at most WRITE_BUDGET bytes of it
    assert ids[:2] == [QUEUE + 200 - QUEUE // 2 + 1, QUEUE + 200 - QUEUE // 2 + 2]
    assert ids == list(range(ids[0], ids[0] + len(ids))) and len(following) <= WRITE_BUDGET


def parse(data: bytes) -> list[Message]:
    """The event messages in one write of a stream."""
    return take(messages_of(data.decode().splitlines()), len(data.split(b"\r\n\r\n")) - 1)


def test_stream_writes_wait_while_another_request_is_answered_but_not_for_long() -> None:
    """A stream's turn to write waits out a request being served, up to YIELD_TURNS loop turns; at once otherwise."""

    async def turns_waited(serving: bool) -> int:
        hub = StreamHub(EventBus(), limit=1)
        with hub.serving() if serving else contextlib.nullcontext():
            waiting = asyncio.ensure_future(hub.turn())
            turns = 0
            while not waiting.done():
                await asyncio.sleep(0)  # one loop turn
                turns += 1
        return turns

    assert asyncio.run(turns_waited(serving=False)) == 1  # the task's first step: admitted at once
    assert YIELD_TURNS < asyncio.run(turns_waited(serving=True)) <= YIELD_TURNS + 3
