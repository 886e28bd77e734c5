"""The event bus: numbering, fan-out, replay and overflow."""

from __future__ import annotations

import uuid

from revaer_core.bus import EventBus
from revaer_core.events import Event, TorrentAdded, TorrentRemoved


def added(n: int) -> TorrentAdded:
    return TorrentAdded(torrent_id=uuid.UUID(int=n), name=f"t{n}")


def test_events_are_numbered_and_delivered_in_order() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    for n in range(3):
        bus.publish(added(n))
    assert [e.id for e in seen] == [1, 2, 3]
    assert [e.payload for e in seen] == [added(0), added(1), added(2)]
    assert seen[0].at <= seen[2].at and seen[0].at.utcoffset() is not None
    assert bus.last_id == 3


def test_a_late_subscriber_resumes_after_the_last_id_it_saw() -> None:
    bus = EventBus(capacity=10)
    for n in range(5):
        bus.publish(added(n))
    replay = bus.replay(after=3)
    assert [e.id for e in replay.events] == [4, 5]
    assert replay.dropped == 0
    assert bus.replay(after=5).events == ()


def test_overflow_drops_the_oldest_and_says_how_many_were_missed() -> None:
    bus = EventBus(capacity=4)
    for n in range(10):
        bus.publish(added(n))
    replay = bus.replay(after=2)
    assert [e.id for e in replay.events] == [7, 8, 9, 10]
    assert replay.dropped == 4  # events 3..6 are gone
    assert bus.overflowed == 6
    assert bus.replay(after=0).dropped == 6


def test_a_failing_handler_does_not_stop_the_others() -> None:
    bus = EventBus()
    seen: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(e.id))
    bus.publish(TorrentRemoved(torrent_id=uuid.UUID(int=1)))
    assert seen == [1]


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[int] = []
    unsubscribe = bus.subscribe(lambda e: seen.append(e.id))
    bus.publish(added(1))
    unsubscribe()
    bus.publish(added(2))
    assert seen == [1]
