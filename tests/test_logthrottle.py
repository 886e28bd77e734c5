"""Log floods: one warning per fault and interval with a count of the repeats, first failure and recovery always."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from revaer_core import RuntimeStore
from revaer_core.backoff import Backoff
from revaer_core.contract import samples
from revaer_core.logthrottle import LogThrottle
from revaer_core.orchestrator.writer import StoreWriter
from revaer_core.testing.waiting import wait_for
from tests.test_writer_resume import RecordingStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_repeats_within_the_interval_are_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttle = LogThrottle(logging.getLogger("revaer.test"), 30.0, clock=clock)
    caplog.set_level(logging.INFO, logger="revaer.test")
    assert throttle.failure("db", "write failed: %s", "refused")  # the first is always logged
    for _ in range(500):
        clock.now += 0.05
        assert not throttle.failure("db", "write failed: %s", "refused")
    assert throttle.failure("other", "another fault")  # each fault has its own interval
    clock.now += 30.0
    assert throttle.failure("db", "write failed: %s", "refused")
    assert throttle.recovered("db", "writes succeed again") == 502
    assert throttle.recovered("db", "writes succeed again") == 0  # nothing to recover from: quiet
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "write failed: refused",
        "another fault",
        "write failed: refused (500 more like this suppressed in the last 30 s)",
        "writes succeed again (after 502 failure(s), 500 not logged)",
    ]


def test_a_store_outage_logs_a_few_lines_not_one_per_retry(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plugin = RecordingStore()
    store = RuntimeStore.open(plugin, name="memory", data_dir=tmp_path)
    writer = StoreWriter(store, interval=0.005, backoff=Backoff(initial=0.001, maximum=0.002))
    caplog.set_level(logging.INFO, logger="revaer_core.orchestrator.writer")
    plugin.down = True
    writer.start()
    status = samples.status(1)
    for n in range(2_000):  # events keep coming during the outage; each flush fails
        writer.upsert(status)
        writer.save_resume_data([(status.id, str(n).encode())])
        if n % 100 == 0:
            wait_for(lambda: plugin.down, "")
    wait_for(lambda: writer._failures >= 50, "at least 50 failed flushes")
    failures = writer._failures
    plugin.down = False
    assert writer.flush(10)
    assert writer.close(5).complete
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, f"{failures} failed flushes logged as {len(lines)} lines: {lines[:5]}"
    assert lines[0].startswith("runtime store write failed for 1 torrent(s)") and "(failure 1)" in lines[0]
    assert lines[1].startswith("runtime store writes succeed again (after ")
    assert store.load_resume_data() == {status.id: b"1999"}
