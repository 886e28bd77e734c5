"""Server-sent events from the bus, resumable through its replay ring.

The ring is the only source of events: a bus subscription merely wakes the
streams up, and each stream then asks for everything after the last id it
sent. A slow client therefore costs no memory of its own (it cannot build a
private backlog), and "what was missed" has one answer, the ring's ``dropped``.

What keeps hundreds of streams from starving the event loop (and, through
the GIL, the engine's thread):

- one :class:`StreamHub` per app holds the single bus subscription of all its
  streams, and wakes them at most once per :data:`WAKE_INTERVAL_S`, however
  fast events come;
- each event is encoded to bytes once, and the streams that wake at the same
  position share one joined chunk: a wake-up costs a caught-up stream one
  write, not one per event;
- the streams are woken :data:`WAKE_BATCH` at a time, and all of them together
  write at most :data:`WRITES_PER_TURN` times in one loop turn;
- while a request other than a stream is being answered, the streams wait
  (up to :data:`YIELD_TURNS` turns in a row) so that it is not held behind
  their writes;
- a stream writes at most :data:`WRITE_BUDGET` bytes per loop turn; the server
  awaits the transport's drain before the next write, so a client that stops
  reading parks its stream instead of filling buffers;
- a disconnect makes the server cancel the stream before its next write
  (one write per turn never piles writes onto a dead transport).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from uuid import UUID

import attrs
import msgspec

from revaer_core.api.models import public_json
from revaer_core.bus import EventBus, Replay
from revaer_core.errors import RevaerError
from revaer_core.events import Event, EventPayload
from revaer_core.redact import redact

#: The ``event:`` name of the message telling a client to re-read state from ``/v1/torrents``.
RESYNC = "resync"

#: Seconds between keep-alive comments on an idle stream, so proxies keep the connection open.
HEARTBEAT_SECONDS = 15.0

#: Most bytes a stream writes in one loop turn: a replay of a full ring goes out in pieces of this
#: size, each after the previous one drained, and other requests are served in between.
WRITE_BUDGET = 32 * 1024

#: Events a client may fall behind the newest before it is sent a ``resync`` and skipped ahead:
#: its queue. A client that reads too slowly then loses this backlog and no more.
QUEUE = 1024

#: Encoded events kept for the streams to share: each event is encoded once, not once per client.
ENCODED = 4096

#: Seconds between two wake-ups of the streams: events that arrive meanwhile go out together.
WAKE_INTERVAL_S = 0.02

#: Streams woken in one loop turn; the rest in the next turns.
WAKE_BATCH = 4

#: Stream writes in one loop turn, all streams together; a stream past it waits for the next turn.
#: On asyncio's own loop each write was a system call that let the engine's thread take the GIL, for up to
#: the interpreter's switch interval: a turn with one write per open stream held every other request for
#: seconds, and at four a turn a ``/health`` request took up to 300 ms behind 200 streams filling their
#: buffers. uvloop (see :mod:`revaer_core.api.server`) writes with the GIL held; each turn's poll still lets go of it.
WRITES_PER_TURN = 1

#: Loop turns in a row that stream writes may wait while other requests are being answered: a request
#: is not held behind the streams' writes, and the streams still write once in this many turns.
YIELD_TURNS = 8

#: Events a chunk takes from the ring at a time: about a :data:`WRITE_BUDGET` of progress events, so that
#: a chunk copies a slice of the ring, not all of it.
REPLAY_STEP = 128

KEEPALIVE = b": keep-alive\r\n\r\n"


class TooManyStreams(RevaerError):
    """Every event-stream slot is taken (``[api] max_event_streams``)."""


class StreamHub:
    """The bus subscription every event stream of one app shares, the bound on their number, and their chunks.

    The bus calls :meth:`_on_event` on the publishing thread for each event; it
    schedules one wake-up of all streams on the loop unless one is pending
    already, so a burst of events costs the publisher one cross-thread call,
    not one per client per event.
    """

    def __init__(self, bus: EventBus, limit: int, *, wake_interval: float = WAKE_INTERVAL_S) -> None:
        self.bus = bus
        self.limit = limit
        self.wake_interval = wake_interval
        self._lock = threading.Lock()
        self._streams: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._last_wake = 0.0
        self._unsubscribe: Callable[[], None] | None = None
        self._encoded: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._chunks: dict[int, tuple[bytes, int, int]] = {}  #: after -> (bytes, last id, dropped), this wake-up
        self._writes = 0  #: stream writes in this loop turn
        self._queued: collections.deque[asyncio.Future[None]] = collections.deque()  #: streams waiting to write
        self._turn_pending = False  #: a call of :meth:`_next_turn` is scheduled
        self._requests = 0  #: other requests being answered on the loop (see :meth:`serving`)
        self._yielded = 0  #: loop turns in a row the streams have waited for them
        self._closed = False  #: the server is stopping: every stream ends (see :meth:`close`)

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

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every stream (on the loop, as the server stops): a stream never ends by itself.

        A stream waiting for events ends at once; one parked on a write its
        client does not read ends once that write is done or dropped.
        """
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for wake in streams:
            wake.set()

    def leave(self, wake: asyncio.Event) -> None:
        with self._lock:
            self._streams.discard(wake)
            if not self._streams and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def chunk(self, after: int) -> tuple[bytes, int, int]:
        """The encoded events after ``after``, up to :data:`WRITE_BUDGET` bytes: ``(bytes, last id, dropped)``.

        Called on the loop only. Streams at the same position during one
        wake-up get the same bytes object, joined once. ``dropped`` counts the
        events the ring no longer holds (the caller sends a resync first).
        """
        found = self._chunks.get(after)
        if found is not None:
            return found
        replay = self.bus.replay(after, REPLAY_STEP)
        parts: list[bytes] = []
        size, last = 0, after + replay.dropped
        for event in itertools.chain(replay.events, self._after(replay)):
            data = self._encode(event)
            if parts and size + len(data) > WRITE_BUDGET:
                break
            parts.append(data)
            size += len(data)
            last = event.id
        found = (b"".join(parts), last, replay.dropped)
        if parts:  # an empty answer is not kept: events may come before the next wake-up clears it
            self._chunks[after] = found
        return found

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Hold the streams' writes back while a request that is not a stream is answered (on the loop)."""
        self._requests += 1
        try:
            yield
        finally:
            self._requests -= 1

    async def turn(self) -> None:
        """Wait until a stream may write in this loop turn (see :data:`WRITES_PER_TURN`); first come, first served."""
        if self._writes < WRITES_PER_TURN and not self._queued and not self._requests:
            self._writes += 1
            self._schedule_turn()
            return
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append(admitted)
        self._schedule_turn()
        try:
            await admitted
        except asyncio.CancelledError:
            if admitted in self._queued:
                self._queued.remove(admitted)
            raise

    def _schedule_turn(self) -> None:
        if not self._turn_pending:
            self._turn_pending = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """A new loop turn: admit the next streams waiting to write, unless they yield to a request."""
        self._turn_pending = False
        self._writes = 0
        if self._queued and self._requests and self._yielded < YIELD_TURNS:
            self._yielded += 1
            self._schedule_turn()
            return
        self._yielded = 0
        while self._queued and self._writes < WRITES_PER_TURN:
            admitted = self._queued.popleft()
            if not admitted.done():
                admitted.set_result(None)
                self._writes += 1
        if self._writes or self._queued:
            self._schedule_turn()

    def _after(self, replay: Replay) -> Iterator[Event]:
        """The events after a full step of the ring, a step at a time, up to the newest or a gap."""
        while len(replay.events) == REPLAY_STEP:
            replay = self.bus.replay(replay.events[-1].id, REPLAY_STEP)
            if replay.dropped:  # overflowed meanwhile: the stream's next chunk says so
                return
            yield from replay.events

    def _encode(self, event: Event) -> bytes:
        found = self._encoded.get(event.id)
        if found is None:
            found = self._encoded[event.id] = encode(event)
            if len(self._encoded) > ENCODED:
                self._encoded.popitem(last=False)
        return found

    def _on_event(self, _: Event) -> None:
        # read without the lock first: a wake-up is pending for nearly every event, and taking the lock each
        # time cost the publishing thread more than 1 % of its rate. Seeing one pending is enough: it wakes the
        # streams after this event entered the ring, so they send it.
        if self._scheduled:
            return
        with self._lock:
            if self._scheduled or self._loop is None:
                return
            self._scheduled = True
            loop = self._loop
        # the loop may have closed under a stream not yet cleaned up: nothing left to wake then
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._arm, loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the streams now, or once :attr:`wake_interval` has passed since the last wake-up."""
        delay = self._last_wake + self.wake_interval - loop.time()
        if delay > 0:
            loop.call_later(delay, self._wake_all, loop)
        else:
            self._wake_all(loop)

    def _wake_all(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._scheduled = False
            streams = tuple(self._streams)
        self._last_wake = loop.time()
        self._chunks.clear()  # a new wake-up: the newest id moved on
        self._wake_some(loop, streams, 0)

    def _wake_some(self, loop: asyncio.AbstractEventLoop, streams: tuple[asyncio.Event, ...], start: int) -> None:
        for wake in streams[start : start + WAKE_BATCH]:
            wake.set()
        if start + WAKE_BATCH < len(streams):
            loop.call_soon(self._wake_some, loop, streams, start + WAKE_BATCH)


def event_json(event: Event) -> dict[str, object]:
    """An event as the stream's ``data:`` carries it: id, time, payload kind and payload fields."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.payload.kind,
        "payload": payload_json(event.payload),
    }


_FIELD_NAMES: dict[type[EventPayload], tuple[str, ...]] = {}
_PLAIN = (int, float, bool)


def payload_json(payload: EventPayload) -> object:
    """``public_json(payload)``, built directly for the flat payloads most events carry.

    The stream encodes every event it sends, on the event loop; the general
    serializer cost about 80 µs an event there, competing with the engine's
    thread for the GIL. A payload with any field that is not a number, a
    string, a UUID or ``None`` takes the general path, so both give the same JSON.
    """
    kind = type(payload)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in attrs.fields(kind))
    out: dict[str, object] = {}
    for name in names:
        value = getattr(payload, name)
        if value is None or type(value) in _PLAIN:
            out[name] = value
        elif type(value) is str:
            out[name] = redact(value)
        elif isinstance(value, UUID):
            out[name] = str(value)
        else:
            return public_json(payload)
    return out


#: JSON as the stream sends it: msgspec's, about ten times quicker than ``json.dumps`` on the loop.
_json = msgspec.json.Encoder()


def _message(event_id: int, kind: str, data: object) -> bytes:
    # JSON escapes line breaks inside strings, so one data: line always holds the whole event
    return b"id: %d\r\nevent: %s\r\ndata: %s\r\n\r\n" % (event_id, kind.encode(), _json.encode(data))


def encode(event: Event) -> bytes:
    """One event as a server-sent-event message, ready for the socket."""
    return _message(event.id, event.payload.kind, event_json(event))


def resync(last_id: int, reason: str, dropped: int) -> bytes:
    """The message telling a client it missed ``dropped`` events and should re-read ``/v1/torrents``."""
    return _message(last_id, RESYNC, {"reason": reason, "dropped": dropped, "last_id": last_id})


async def event_stream(
    hub: StreamHub, after: int, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncGenerator[bytes, None]:
    """Events with ids above ``after``, then every new one, until the client goes away or the hub closes.

    The stream holds a slot of ``hub`` while it runs. A ``resync`` message comes first when the ring can no
    longer supply every event after ``after`` (it overflowed, or ``after`` is
    from an earlier run of the daemon, whose ids started again at 1). Each
    item is one write: a run of encoded events, a resync, or a keep-alive.
    """
    bus = hub.bus
    live = False  #: caught up once: from then on the client has a queue of QUEUE events
    wake = hub.join()
    try:
        last = after
        newest = bus.last_id
        if after > newest:
            yield resync(newest, f"event {after} is unknown here (the daemon restarted?)", dropped=0)
            last = newest
        while not hub.closed:
            wake.clear()
            newest = bus.last_id
            await hub.turn()
            if live and newest - last > QUEUE:  # a replay asked for is sent whole; a live client is queued
                yield resync(last, "the client reads too slowly to keep up", dropped=newest - QUEUE // 2 - last)
                last = newest - QUEUE // 2
            data, sent, dropped = hub.chunk(last)
            if dropped:
                yield resync(last, "the replay ring overflowed", dropped=dropped)
            if data:
                yield data
            last = sent
            if last < newest:  # more than one write's worth: the next piece in a later turn
                continue
            live = True
            try:
                await asyncio.wait_for(wake.wait(), timeout=heartbeat)
            except TimeoutError:
                yield KEEPALIVE
    finally:
        hub.leave(wake)
