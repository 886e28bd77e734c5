"""The store's health as ``/health`` reports it: probed in the background, never by the handler.

A store whose server hangs (stopped by SIGSTOP, a dead network path) would
hold a ``/health`` request for as long as its driver waits. Here one thread
asks the store, and the handler only reads what it found. Every request asks
for a new probe; it answers at once from the last one when that started
less than :data:`RECENT_S` ago, and otherwise waits up to
:data:`FRESH_WAIT_S` for the one it asked for (so a store checked rarely is
seen as it is now when it answers quickly). A probe still unanswered after
:data:`STALL_S` is itself the report: the store is not answering.

Not waiting when the last answer is recent is what keeps ``/health`` fast
under load: the probe's thread, and the loop it hands the answer back to,
each wait for the GIL, up to a switch interval a time, behind whatever
thread is busy (the engine's, publishing events).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from revaer_core.health import StoreHealth

#: Seconds between probes when nobody asks.
INTERVAL_S = 5.0
#: Most seconds a ``/health`` request waits for a fresh probe before it answers from the last one.
FRESH_WAIT_S = 0.25
#: Age in seconds (from its start) below which the last probe's answer is given without waiting for a
#: fresh one: how old the store's health in a ``/health`` answer may be while someone polls.
RECENT_S = 0.5
#: Seconds a probe may go unanswered before the store is reported as not answering.
STALL_S = 0.5


class StoreProbe:
    """Runs ``check`` on its own thread, on request and every :data:`INTERVAL_S`; :meth:`report` never blocks long."""

    def __init__(self, check: Callable[[], StoreHealth], *, interval: float = INTERVAL_S) -> None:
        self._check = check
        self._interval = interval
        self._cond = threading.Condition()
        self._result: StoreHealth | None = None
        self._result_at = 0.0  #: when the probe that found ``_result`` started (monotonic)
        self._finished = 0  #: probes finished
        self._started_at: float | None = None  #: when the probe in flight started; None when idle
        self._wanted = False
        self._closed = False
        self._thread: threading.Thread | None = None
        #: requests waiting for a probe: (ticket, their loop, the future to settle there)
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def start(self) -> None:
        """Start the probing thread (once); it runs until :meth:`close`."""
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="revaer-health-probe", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop probing; a probe in flight is left to finish on its own (the thread is a daemon)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def ask(self) -> int:
        """Ask for a probe that starts after now; returns the count of finished probes that includes it."""
        self.start()
        with self._cond:
            self._wanted = True
            self._cond.notify_all()
            return self._finished + (2 if self._started_at is not None else 1)

    def answered(self, ticket: int) -> bool:
        """Whether the probe :meth:`ask` returned ``ticket`` for has finished."""
        with self._cond:
            return self._finished >= ticket or self._closed

    def current(self) -> StoreHealth:
        """The last probe's report, or why there is none to trust: never waits."""
        with self._cond:
            if self._started_at is not None:
                stalled = time.monotonic() - self._started_at
                if stalled >= STALL_S:
                    return StoreHealth(
                        ok=False, detail=f"the store has not answered a health check for {stalled:.1f} s"
                    )
            if self._result is None:
                return StoreHealth(ok=False, detail="the store's first health check has not finished yet")
            return self._result

    async def report(self, wait: float = FRESH_WAIT_S, recent: float = RECENT_S) -> StoreHealth:
        """The store's health: the last probe's if it started less than ``recent`` seconds ago, else a fresh one's.

        The fresh probe is asked for in any case, so that the next call finds
        a recent answer. It is waited for at most ``wait`` seconds, then the
        last answer is given (or that the store is not answering). Returns
        within about ``wait`` seconds whatever the store does, and holds no
        worker thread meanwhile (they may all be waiting on the store).
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        ticket = self.ask()
        with self._cond:
            fresh_enough = self._result is not None and time.monotonic() - self._result_at < recent
            if fresh_enough or self._finished >= ticket or self._closed:
                done.set_result(None)
            else:
                self._waiters.append((ticket, loop, done))
        if not done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), wait)
        return self.current()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._wanted and not self._closed:
                    self._cond.wait(self._interval)
                if self._closed:
                    return
                self._wanted = False
                self._started_at = started = time.monotonic()
            result = self._check()  # the check itself turns every failure into a report
            with self._cond:
                self._result, self._result_at = result, started
                self._started_at = None
                self._finished += 1
                self._cond.notify_all()
                ready = [w for w in self._waiters if w[0] <= self._finished]
                self._waiters = [w for w in self._waiters if w[0] > self._finished]
            for _, loop, done in ready:
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits any more
                    loop.call_soon_threadsafe(_settle, done)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
