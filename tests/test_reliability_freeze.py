"""Every PostgreSQL process frozen by SIGSTOP under a running ``revaer run``: nothing waits on it.

A stopped server's kernel still accepts connections and acknowledges every
packet, so only client-side deadlines notice. During the freeze the engine's
events keep flowing (resume data goes through the write-behind writer, never
the engine's thread), health turns ``degraded`` for ``runtime_store``, and
after the thaw the writes land with nothing lost. The figures (event rate
during the freeze against before it, time to degraded) are in
``benchmarks/persistence.py``; this test asserts the outcome.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from revaer_core.testing.process import DaemonProcess, Daemons, EventLogView, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import PrivateCluster, pg_options, stored_progress

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "freeze"
TORRENTS = 30
FREEZE_S = 8.0


def health(daemon: DaemonProcess) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(f"{daemon.api_url}/health", timeout=30).json()
    return answer


def test_a_frozen_server_stops_no_event_and_loses_no_write(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    log_path = tmp_path / "events.jsonl"
    config = write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data"), "flush_interval_ms": 100},
            "runtime.postgres": pg_options(private_cluster.url, SCHEMA, connect_timeout_s=2),
            "engine": {"download_dir": str(tmp_path / "downloads")},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )
    args = ["--sim-torrents", str(TORRENTS), "--sim-steps", "2000"]
    daemon = daemons(*args, "--event-log", str(log_path), config=config)
    daemon.wait_running()
    wait_for(lambda: len(EventLogView.read(log_path).written) >= 5, "a few committed flushes", timeout=30)

    with private_cluster.frozen():
        froze = time.time()
        wait_for(
            lambda: "runtime_store" in str(health(daemon)["degraded"]),
            "GET /health to report degraded while the server is frozen",
            timeout=FREEZE_S,
        )
        degraded_after = time.time() - froze
        time.sleep(max(0.0, FREEZE_S - (time.time() - froze)))
        thawed = time.time()
    events = EventLogView.read(log_path).events
    during = [e for e in events if froze <= e["t"] < thawed]
    seconds = [int(e["t"] - froze) for e in during]
    silent = [s for s in range(int(thawed - froze)) if s not in seconds]
    assert not silent, f"no event at all in second(s) {silent} of the freeze: the event path waited on the store"
    assert degraded_after < FREEZE_S

    wait_for(lambda: health(daemon)["status"] == "ok", "GET /health to recover after the thaw", timeout=60)
    assert daemon.terminate() == 0, daemon.stderr[-3000:]
    last: dict[uuid.UUID, int] = {}
    for event in EventLogView.read(log_path).of_type("ProgressUpdated"):
        last[uuid.UUID(event["torrent"])] = event["downloaded"]
    assert stored_progress(private_cluster.url, SCHEMA, tmp_path) == last, "a write made during the freeze was lost"
