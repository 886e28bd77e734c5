"""Server-sent events from the bus, resumable through its replay ring.

The ring is the only source of events: a bus subscription merely wakes the
stream up, and the stream then asks the ring for everything after the last id
it sent. A slow client therefore costs no memory of its own (it cannot build a
private backlog), and "what was missed" has one answer, the ring's ``dropped``.

One :class:`StreamHub` per app holds the single bus subscription of all its
streams: the publishing thread (the engine's) schedules at most one wake-up
on the event loop however many clients listen, and the hub bounds how many
may listen at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any

from litestar.response import ServerSentEventMessage

from revaer_core.api.models import public_json
from revaer_core.bus import EventBus
from revaer_core.errors import RevaerError
from revaer_core.events import Event

#: The ``event:`` name of the message telling a client to re-read state from ``/v1/torrents``.
RESYNC = "resync"

#: Seconds between keep-alive comments on an idle stream, so proxies keep the connection open.
HEARTBEAT_SECONDS = 15.0

#: Messages a stream sends before it gives the event loop a turn: a replay of a full ring must
#: not hold up every other request.
CHUNK = 64

#: Events a client may fall behind the newest before it is sent a ``resync`` and skipped ahead:
#: its queue. A client that reads too slowly then loses this backlog and no more.
QUEUE = 1024

#: Encoded messages kept for the streams to share: each event is encoded once, not once per client.
ENCODED = 4096


class TooManyStreams(RevaerError):
    """Every event-stream slot is taken (``[api] max_event_streams``)."""


class StreamHub:
    """The bus subscription every event stream of one app shares, and the bound on their number.

    The bus calls :meth:`_on_event` on the publishing thread for each event;
    it schedules one wake-up of all streams on the loop unless one is pending
    already, so a burst of events costs the publisher one cross-thread call,
    not one per client per event.
    """

    def __init__(self, bus: EventBus, limit: int) -> None:
        self.bus = bus
        self.limit = limit
        self._lock = threading.Lock()
        self._streams: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._unsubscribe: Callable[[], None] | None = None
        self._encoded: collections.OrderedDict[int, ServerSentEventMessage] = collections.OrderedDict()

    def message(self, event: Event) -> ServerSentEventMessage:
        """The stream message of ``event``, encoded once for every stream (called on the loop only)."""
        found = self._encoded.get(event.id)
        if found is None:
            found = self._encoded[event.id] = _message(event)
            if len(self._encoded) > ENCODED:
                self._encoded.popitem(last=False)
        return found

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def check(self) -> None:
        """Refuse a new stream when every slot is taken: :class:`TooManyStreams`, before the response starts."""
        with self._lock:
            if len(self._streams) >= self.limit:
                raise TooManyStreams(
                    f"{self.limit} event streams are open already, the most this daemon serves "
                    "([api] max_event_streams); try again later"
                )

    def join(self) -> asyncio.Event:
        """A wake-up for a stream that starts now (on the loop); :meth:`leave` gives it back.

        Taken when the stream's body starts, not when the request is checked, so
        a client that leaves before its first message holds no slot.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            wake = asyncio.Event()
            self._streams.add(wake)
            self._loop = loop
            if self._unsubscribe is None:
                self._unsubscribe = self.bus.subscribe(self._on_event)
        return wake

    def leave(self, wake: asyncio.Event) -> None:
        with self._lock:
            self._streams.discard(wake)
            if not self._streams and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def _on_event(self, _: Event) -> None:
        with self._lock:
            if self._scheduled or self._loop is None:
                return
            self._scheduled = True
            loop = self._loop
        # the loop may have closed under a stream not yet cleaned up: nothing left to wake then
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        with self._lock:
            self._scheduled = False
            streams = tuple(self._streams)
        for wake in streams:
            wake.set()


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
    hub: StreamHub, after: int, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """Events with ids above ``after``, then every new one, until the client goes away.

    The stream holds a slot of ``hub`` while it runs. A ``resync`` message comes first when the ring can no
    longer supply every event after ``after`` (it overflowed, or ``after`` is
    from an earlier run of the daemon, whose ids started again at 1).
    """
    bus = hub.bus
    live = False  #: caught up once: from then on the client has a queue of QUEUE events
    wake = hub.join()
    try:
        last = after
        newest = bus.last_id
        if after > newest:
            yield _resync(newest, f"event {after} is unknown here (the daemon restarted?)", dropped=0)
            last = newest
        while True:
            wake.clear()
            newest = bus.last_id
            if live and newest - last > QUEUE:  # a replay asked for is sent whole; a live client is queued
                yield _resync(last, "the client reads too slowly to keep up", dropped=newest - QUEUE // 2 - last)
                last = newest - QUEUE // 2
            replay = bus.replay(last)
            if replay.dropped:
                yield _resync(last, "the replay ring overflowed", dropped=replay.dropped)
            for n, event in enumerate(replay.events, 1):
                yield hub.message(event)
                last = event.id
                if n % CHUNK == 0:
                    await asyncio.sleep(0)
            live = True
            try:
                await asyncio.wait_for(wake.wait(), timeout=heartbeat)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
    finally:
        hub.leave(wake)
