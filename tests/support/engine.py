"""Fixtures for engine tests: an event recorder with timed waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from revaer_core.events import EventPayload, StateChanged
from revaer_core.status import TorrentState

P = TypeVar("P", bound=EventPayload)

#: The longest any engine test waits for one thing; loopback steps take well under a second.
WAIT_S = 10.0


class Recorder:
    """Collects published payloads (thread-safe) and waits, with a deadline, for one to arrive."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.payloads: list[EventPayload] = []

    def __call__(self, payload: EventPayload) -> None:
        with self._cond:
            self.payloads.append(payload)
            self._cond.notify_all()

    def snapshot(self) -> list[EventPayload]:
        with self._cond:
            return list(self.payloads)

    def clear(self) -> None:
        with self._cond:
            self.payloads.clear()

    def of(self, kind: type[P]) -> list[P]:
        return [p for p in self.snapshot() if isinstance(p, kind)]

    def wait_for(self, predicate: Callable[[EventPayload], bool], timeout: float = WAIT_S) -> EventPayload:
        """The first payload matching ``predicate``; fails the test, listing what came, after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for payload in self.payloads:
                    if predicate(payload):
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n  ".join(repr(p) for p in self.payloads) or "(none)"
                    raise AssertionError(f"no matching event within {timeout} s; events:\n  {seen}")
                self._cond.wait(left)

    def wait_for_state(self, state: TorrentState, timeout: float = WAIT_S) -> StateChanged:
        found = self.wait_for(lambda p: isinstance(p, StateChanged) and p.state is state, timeout)
        assert isinstance(found, StateChanged)
        return found


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
