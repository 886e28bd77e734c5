"""Waiting for something another thread or process does, with a deadline and a message."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], bool], what: str = "the condition", timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Return once ``condition()`` holds; raise AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
