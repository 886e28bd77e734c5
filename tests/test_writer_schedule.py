"""When the writer flushes: an interval after the previous scheduled flush began, sooner only after a long flush."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from revaer_core import RuntimeStore, TorrentStatus, hookimpl
from revaer_core.contract import samples
from revaer_core.orchestrator import writer as writer_module
from revaer_core.orchestrator.writer import StoreWriter
from revaer_core.testing.waiting import wait_for
from revaer_runtime_memory import MemoryStore

INTERVAL = 60.0  #: long enough that a test passing never waited it out


class GatedStore(MemoryStore):
    """The memory store, whose first upsert waits inside the store until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.gate.wait(30)
        super().upsert_torrents(statuses)


class SkewedTime:
    """The ``time`` module as the writer sees it, with a monotonic clock the test moves forward."""

    def __init__(self) -> None:
        self.skew = 0.0
        self.perf_counter = time.perf_counter
        self.sleep = time.sleep

    def monotonic(self) -> float:
        return time.monotonic() + self.skew


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SkewedTime:
    skewed = SkewedTime()
    monkeypatch.setattr(writer_module, "time", skewed)
    return skewed


def test_a_flush_longer_than_an_interval_is_followed_by_the_next_at_once(clock: SkewedTime, tmp_path: Path) -> None:
    """The next flush is due an interval after the last scheduled one began, not an interval after it ended."""
    plugin, store, writer = gated_writer(tmp_path)
    clock.skew += INTERVAL  # the first flush is due: the status is taken on schedule, not urgently
    first = samples.status(1)
    writer.upsert(first)
    assert plugin.entered.wait(10), "the status is flushed once the interval is over"
    moved = samples.progressed(first, 7)
    writer.progress(moved)  # waits in the buffer while the first flush runs
    clock.skew += 1.2 * INTERVAL  # ...and that flush takes longer than an interval
    plugin.gate.set()
    wait_for(lambda: store.get_torrent(first.id) == moved, timeout=10)
    assert writer.close(deadline=5).complete


def gated_writer(tmp_path: Path) -> tuple[GatedStore, RuntimeStore, StoreWriter]:
    """A started writer of one interval over a :class:`GatedStore`."""
    plugin = GatedStore()
    store = RuntimeStore.open(plugin, name="gated", options={}, data_dir=tmp_path)
    writer = StoreWriter(store, interval=INTERVAL)
    writer.start()
    return plugin, store, writer


def flushed_on_schedule(plugin: GatedStore, writer: StoreWriter, clock: SkewedTime, took: float) -> TorrentStatus:
    """A status the writer took on schedule, in a flush the clock says lasted ``took`` intervals."""
    clock.skew += INTERVAL
    first = samples.status(1)
    ticket = writer.upsert(first)  # taken on schedule
    assert plugin.entered.wait(10), "the status is flushed once the interval is over"
    clock.skew += took * INTERVAL
    plugin.gate.set()
    assert writer.wait_written(ticket, timeout=10)
    return first


def test_after_a_flush_of_under_half_an_interval_the_next_waits_a_whole_interval(
    clock: SkewedTime, tmp_path: Path
) -> None:
    """A flush that took 0.4 intervals does not bring the next forward: progress coalesces a whole interval."""
    plugin, store, writer = gated_writer(tmp_path)
    first = flushed_on_schedule(plugin, writer, clock, 0.4)
    clock.skew += 0.5 * INTERVAL  # 0.9 intervals after it began
    moved = samples.progressed(first, 7)
    writer.progress(moved)
    time.sleep(0.3)
    assert store.get_torrent(first.id) == first, "the next flush is due a whole interval after the last began"
    clock.skew += 0.2 * INTERVAL  # 1.1 intervals after it began
    wait_for(lambda: store.get_torrent(first.id) == moved, timeout=10)
    assert writer.close(deadline=5).complete


def test_after_a_long_flush_the_next_begins_sooner_by_what_it_took_past_half_an_interval(
    clock: SkewedTime, tmp_path: Path
) -> None:
    """A flush that took 0.7 intervals is followed 0.8 intervals after it began: progress waits 1.5 at most."""
    plugin, store, writer = gated_writer(tmp_path)
    first = flushed_on_schedule(plugin, writer, clock, 0.7)
    clock.skew += 0.15 * INTERVAL  # 0.85 intervals after it began: past 0.8, short of a whole interval
    moved = samples.progressed(first, 7)
    writer.progress(moved)
    wait_for(lambda: store.get_torrent(first.id) == moved, timeout=10)
    assert writer.close(deadline=5).complete


def test_a_quick_flush_after_a_long_one_does_not_push_the_next_back(clock: SkewedTime, tmp_path: Path) -> None:
    """The lead comes from the longest recent flush: a quick one (after an urgent flush took the rows) keeps it."""
    plugin, store, writer = gated_writer(tmp_path)
    first = flushed_on_schedule(plugin, writer, clock, 0.7)  # a long flush: the next is due 0.8 after it began
    clock.skew += 0.1 * INTERVAL  # the next is due: it is quick
    moved = samples.progressed(first, 7)
    assert writer.wait_written(writer.progress(moved), timeout=10)
    clock.skew += 0.85 * INTERVAL  # past 0.8 intervals, short of a whole one
    later = samples.progressed(first, 9)
    writer.progress(later)
    wait_for(lambda: store.get_torrent(first.id) == later, timeout=10)
    assert writer.close(deadline=5).complete


def test_progress_after_a_quick_flush_waits_for_the_rest_of_the_interval(tmp_path: Path) -> None:
    store = RuntimeStore.open(MemoryStore(), name="memory", options={}, data_dir=tmp_path)
    writer = StoreWriter(store, interval=INTERVAL)
    writer.start()
    first = samples.status(1)
    assert writer.wait_written(writer.upsert(first, urgent=True), timeout=10)
    moved = samples.progressed(first, 7)
    writer.progress(moved)
    time.sleep(0.3)
    assert store.get_torrent(first.id) == first, "progress coalesces for an interval after a quick flush"
    assert writer.close(deadline=5).complete
    assert store.get_torrent(first.id) == moved


def test_an_urgent_flush_does_not_start_the_interval_over(clock: SkewedTime, tmp_path: Path) -> None:
    """Progress after an urgent flush waits for the schedule it had, not for a new interval from the urgent one."""
    store = RuntimeStore.open(MemoryStore(), name="memory", options={}, data_dir=tmp_path)
    writer = StoreWriter(store, interval=INTERVAL)
    writer.start()
    clock.skew += 0.9 * INTERVAL  # most of the first interval has passed when a lifecycle change comes
    first = samples.status(1)
    assert writer.wait_written(writer.upsert(first, urgent=True), timeout=10)
    clock.skew += 0.2 * INTERVAL  # and the interval is over: the urgent flush did not start it again
    moved = samples.progressed(first, 7)
    writer.progress(moved)
    wait_for(lambda: store.get_torrent(first.id) == moved, timeout=10)
    assert writer.close(deadline=5).complete
