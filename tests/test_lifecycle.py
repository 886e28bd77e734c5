"""``StartedInWith``: what a ``with`` block starts is closed on every way out, a failed start included."""

from __future__ import annotations

import pytest

from revaer_core import StartedInWith


class Recorder(StartedInWith):
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.fail:
            raise OSError("the port is taken")

    def close(self) -> None:
        self.calls.append("close")


def test_a_block_that_raises_still_closes() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match="inside"), recorder:
        raise ValueError("inside")
    assert recorder.calls == ["start", "close"]


def test_a_failed_start_closes_what_it_set_up_and_raises() -> None:
    recorder = Recorder(fail=True)
    with pytest.raises(OSError, match="the port is taken"), recorder:
        pytest.fail("the block ran after a failed start")
    assert recorder.calls == ["start", "close"]
