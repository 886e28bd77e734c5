"""The event bus: fan-out to subscribers plus a bounded replay ring.

Handlers run synchronously in the publisher's thread, in subscription order, so a
handler must be quick (the orchestrator's only marks a torrent dirty). A handler
that raises is logged and does not stop the others.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from revaer_core.events import Event, EventPayload

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]


@attrs.frozen
class Replay:
    """Events after a given id still in the ring, and how many were lost to overflow."""

    events: tuple[Event, ...]
    dropped: int  #: events after the requested id that the ring no longer holds


class EventBus:
    """Publishes events, numbering them 1, 2, 3..., and keeps the last ``capacity``."""

    def __init__(self, capacity: int = 1024, clock: Callable[[], datetime] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._ring: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.overflowed = 0  #: events pushed out of the ring so far

    @property
    def last_id(self) -> int:
        """Id of the newest event, 0 before the first."""
        with self._lock:
            return self._ring[-1].id if self._ring else 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every event from now on; returns the unsubscribe function."""
        with self._lock:
            self._handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe

    def publish(self, payload: EventPayload) -> Event:
        """Number, timestamp, remember and deliver ``payload``."""
        with self._lock:
            event = Event(id=next(self._ids), at=self._clock(), payload=payload)
            if len(self._ring) == self._ring.maxlen:
                self.overflowed += 1
                if self.overflowed == 1:
                    log.info(
                        "event ring full (%d events): the oldest are dropped from replay",
                        self._ring.maxlen,
                    )
            self._ring.append(event)
            handlers = tuple(self._handlers)
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on event %d (%s)", handler, event.id, payload.kind)
        return event

    def replay(self, after: int = 0, limit: int | None = None) -> Replay:
        """Events with an id greater than ``after``, oldest first, at most ``limit`` of them.

        ``dropped`` counts the events the caller missed because the ring overflowed;
        a subscriber that sees ``dropped > 0`` should resynchronise from the catalog.
        """
        with self._lock:
            first_kept = self._ring[0].id if self._ring else 1
            # ids in the ring are consecutive: skip to the first one wanted instead of testing each
            start = max(0, after + 1 - first_kept)
            end = None if limit is None else start + limit
            events = tuple(itertools.islice(self._ring, start, end))
        dropped = max(0, first_kept - after - 1)
        return Replay(events=events, dropped=dropped)
