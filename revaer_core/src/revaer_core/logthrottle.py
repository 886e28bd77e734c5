"""One warning per fault and interval: a long outage must not flood the log.

A fault is named by a key ("store write", say). Its first failure is logged
at once; repeats within ``interval_s`` are counted, and the next one after the
interval is logged with that count. The recovery is always logged, with how
many failures it ends, so an operator reads where an outage began and ended
and how bad it was, in a few lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import attrs

#: How often a fault that keeps failing is logged again.
DEFAULT_INTERVAL_S = 30.0


@attrs.define
class _Fault:
    failures: int = 0  #: since the fault began
    suppressed: int = 0  #: since the last logged line
    unlogged: int = 0  #: since the fault began
    logged_at: float = 0.0


class LogThrottle:
    """Rate-limits warnings per fault key; thread-safe.

    :param logger: where the lines go.
    :param interval_s: at most one line per fault key in this many seconds.
    :param clock: monotonic seconds (a test passes its own).
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval_s
        self._clock = clock
        self._faults: dict[str, _Fault] = {}
        self._lock = threading.Lock()

    def failing(self, key: str) -> bool:
        """Whether ``key`` has failed since its last recovery."""
        with self._lock:
            return key in self._faults

    def failure(self, key: str, message: str, *args: object, level: int = logging.WARNING) -> bool:
        """Log ``message % args`` for fault ``key`` unless it was logged within the interval; ``True`` if logged.

        A line logged after suppressed repeats ends with their count.
        """
        now = self._clock()
        with self._lock:
            fault = self._faults.setdefault(key, _Fault())
            fault.failures += 1
            if fault.failures > 1 and now - fault.logged_at < self._interval:
                fault.suppressed += 1
                fault.unlogged += 1
                return False
            suppressed, fault.suppressed, fault.logged_at = fault.suppressed, 0, now
        if suppressed:
            message += f" ({suppressed} more like this suppressed in the last %.0f s)"
            args = (*args, self._interval)
        self._log.log(level, message, *args)
        return True

    def recovered(self, key: str, message: str, *args: object, level: int = logging.WARNING) -> int:
        """Log ``message % args`` if ``key`` was failing, with its failure count; returns that count (0: quiet)."""
        with self._lock:
            fault = self._faults.pop(key, None)
        if fault is None:
            return 0
        self._log.log(level, message + " (after %d failure(s), %d not logged)", *args, fault.failures, fault.unlogged)
        return fault.failures
