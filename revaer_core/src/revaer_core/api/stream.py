"""Server-sent events from the bus, resumable through its replay ring.

The ring is the only source of events: a bus subscription merely wakes the
stream up, and the stream then asks the ring for everything after the last id
it sent. A slow client therefore costs no memory of its own (it cannot build a
private backlog), and "what was missed" has one answer, the ring's ``dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from litestar.response import ServerSentEventMessage

from revaer_core.api.models import public_json
from revaer_core.bus import EventBus
from revaer_core.events import Event

#: The ``event:`` name of the message telling a client to re-read state from ``/v1/torrents``.
RESYNC = "resync"

#: Seconds between keep-alive comments on an idle stream, so proxies keep the connection open.
HEARTBEAT_SECONDS = 15.0


def event_json(event: Event) -> dict[str, Any]:
    """An event as the stream's ``data:`` carries it: id, time, payload kind and payload fields."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.payload.kind,
        "payload": public_json(event.payload),
    }


def _message(event: Event) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        id=event.id, event=event.payload.kind, data=json.dumps(event_json(event), ensure_ascii=False)
    )


def _resync(last_id: int, reason: str, dropped: int) -> ServerSentEventMessage:
    data = json.dumps({"reason": reason, "dropped": dropped, "last_id": last_id})
    return ServerSentEventMessage(id=last_id, event=RESYNC, data=data)


async def event_stream(
    bus: EventBus, after: int, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncIterator[ServerSentEventMessage]:
    """Events with ids above ``after``, then every new one, until the client goes away.

    A ``resync`` message comes first when the ring can no longer supply every
    event after ``after`` (it overflowed, or ``after`` is from an earlier run of
    the daemon, whose ids started again at 1).
    """
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def on_event(_: Event) -> None:
        # the loop may have closed under a stream not yet cleaned up: nothing left to wake then
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    unsubscribe = bus.subscribe(on_event)
    try:
        last = after
        newest = bus.last_id
        if after > newest:
            yield _resync(newest, f"event {after} is unknown here (the daemon restarted?)", dropped=0)
            last = newest
        while True:
            wake.clear()
            replay = bus.replay(last)
            if replay.dropped:
                yield _resync(last, "the replay ring overflowed", dropped=replay.dropped)
            for event in replay.events:
                yield _message(event)
                last = event.id
            try:
                await asyncio.wait_for(wake.wait(), timeout=heartbeat)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
    finally:
        unsubscribe()
