"""The daemon as an operator runs it (the harness's simulated one), against PostgreSQL, under faults and at scale.

Each section starts the daemon as a subprocess with an event log (the
simulated engine unless said otherwise), and reads the figures from that log,
from ``GET /health`` and from the store:

- a freeze: every PostgreSQL process SIGSTOPped for 30 s; the event rate during
  it against the rate before it (target >= 0.5), the time until ``/health``
  says degraded, the slowest ``/health`` answer, and whether every write landed;
- scale: 10,000 simulated torrents, and 2,000 real libtorrent torrents with
  traffic on 127.0.0.1 (half downloading from a loopback swarm, half seeding
  to it); the longest gap in the event flow (target < 1 s), the store's lag
  behind the catalog (target <= two flush intervals), the longest gap between
  committed flushes, and SIGTERM's time against ``shutdown_deadline_s``
  (``benchmarks/scale_scenario.py``);
- what a crash costs a download: a real libtorrent download killed half-way,
  the progress the engine resumes from against what a recheck finds on disk
  (target >= 0.95; ``benchmarks/resume_kill_scenario.py``);
- the crash window: ``kill -9`` at steady state and right after the adds;
  the p99 age of the stored progress at the kill (the README's bound).
"""

from __future__ import annotations

import bisect
import contextlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import scale_scenario as scale
from persistence import Figure
from resume_kill_scenario import resume_after_kill

from revaer_core.testing.process import DaemonProcess, EventLogView, write_config
from revaer_runtime_pg.testing import PrivateCluster, pg_options, stored_progress

SCHEMA = "bench_faults"  #: the schema every fault run writes, on a private cluster of its own
FLUSH_MS = 250


@contextlib.contextmanager
def daemon_on(cluster: PrivateCluster, root: Path, *args: str) -> Iterator[tuple[DaemonProcess, Path]]:
    """The harness's simulated daemon (``python -m revaer_core.testing run``) on ``cluster``, with an event log."""
    log = root / "events.jsonl"
    config = write_config(
        root / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(root / "data"), "flush_interval_ms": FLUSH_MS},
            "runtime.postgres": pg_options(cluster.url, SCHEMA, connect_timeout_s=2),
            "engine": {"download_dir": str(root / "downloads")},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )
    daemon = DaemonProcess([*args, "--event-log", str(log)], config=config, workdir=root)
    try:
        daemon.wait_running(timeout=300)
        yield daemon, log
    finally:
        daemon.kill()


def _wait(condition: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def freeze(*, quick: bool) -> tuple[list[Figure], list[str]]:
    """Events and ``/health`` while every server process is stopped, and what landed after the thaw."""
    seconds = 8.0 if quick else 30.0
    with tempfile.TemporaryDirectory() as tmp, PrivateCluster() as cluster:
        root = Path(tmp)
        with daemon_on(cluster, root, "--sim-torrents", "50", "--sim-steps", "2000") as (daemon, log):
            _wait(lambda: len(EventLogView.read(log).written) >= 5, 60)
            time.sleep(5.0)
            before_end = time.time()
            worst, degraded_at = 0.0, None
            with cluster.frozen():
                froze = time.time()
                while time.time() - froze < seconds:
                    asked = time.monotonic()
                    status = httpx.get(f"{daemon.api_url}/health", timeout=60).json()["status"]
                    worst = max(worst, time.monotonic() - asked)
                    if status == "degraded" and degraded_at is None:
                        degraded_at = time.time() - froze
                    time.sleep(0.2)
                thawed = time.time()
            recovered = _wait(lambda: httpx.get(f"{daemon.api_url}/health", timeout=60).json()["status"] == "ok", 60)
            events = EventLogView.read(log).events
            before = sum(1 for e in events if before_end - 5.0 <= e["t"] < before_end) / 5.0
            during = sum(1 for e in events if froze <= e["t"] < thawed) / (thawed - froze)
            code = daemon.terminate()
        last = {uuid.UUID(e["torrent"]): e["downloaded"] for e in EventLogView.read(log).of_type("ProgressUpdated")}
        lost = sum(1 for k, v in stored_progress(cluster.url, SCHEMA, root).items() if last.get(k, v) != v)
    figure = Figure(f"events during a {seconds:.0f} s freeze", during, "ev/s", before, "before it",
                    during / before if before else 0.0, ">= 0.5", before > 0 and during / before >= 0.5)  # fmt: skip
    said = "never" if degraded_at is None else f"{degraded_at:.1f} s"
    notes = [
        f"freeze of {seconds:.0f} s: /health degraded after {said}, slowest /health {worst * 1000:,.0f} ms, "
        f"recovered after the thaw: {recovered}, exit {code}, torrents whose last progress was lost: {lost}"
    ]
    return [figure], notes


def scale_run(*, quick: bool) -> tuple[list[Figure], list[str]]:
    """10,000 simulated and 2,000 busy real torrents: event gaps, store lag, and SIGTERM against its deadline."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp, PrivateCluster() as cluster:
        runs.append(scale.simulated(cluster, Path(tmp), 2_000 if quick else 10_000))
    with tempfile.TemporaryDirectory() as tmp, PrivateCluster() as cluster:
        runs.append(scale.real(cluster.url, scale.SCHEMA, Path(tmp), 500 if quick else 2_000))
    interval = scale.FLUSH_MS / 1000
    figures = []
    for r in runs:
        what = r.label.replace(" torrents", "")
        figures += [
            Figure(f"longest event gap, {what}", r.event_gap * 1000, "ms", 1000.0, "1 s", r.event_gap, "< 1.0",
                   r.event_gap < 1.0),
            Figure(f"store lag, {what}", r.store_lag * 1000, "ms", interval * 1000, "flush ivl",
                   r.store_lag / interval, "<= 2.0", r.store_lag <= 2 * interval),
            Figure(f"longest flush gap, {what}", r.flush_gap * 1000, "ms", interval * 1000, "flush ivl",
                   r.flush_gap / interval, "report", True),
            Figure(f"SIGTERM to exit, {what}", r.sigterm_s, "s", scale.DEADLINE_S, "deadline",
                   r.sigterm_s / scale.DEADLINE_S, "<= 1.0", r.sigterm_s <= scale.DEADLINE_S and r.exit_code == 0),
        ]  # fmt: skip
    return figures, [r.summary() for r in runs]


def resume_kill(*, quick: bool) -> tuple[list[Figure], list[str]]:
    """A real download killed half-way: the progress resumed without a recheck against the verified progress."""
    with tempfile.TemporaryDirectory() as tmp, PrivateCluster() as cluster:
        size = (32 if quick else 200) * 1024 * 1024
        run = resume_after_kill(Path(tmp), cluster.url, SCHEMA, size=size, rate=size // 20)
    mib = 1024 * 1024
    figure = Figure("resumed after kill -9 mid-download", run.resumed / mib, "MiB", run.verified_at_kill / mib,
                    "verified", run.ratio, ">= 0.95", run.ratio >= 0.95)  # fmt: skip
    return [figure], [run.summary() + f"; download finished after the restart: {run.completed}"]


def _staleness(view: EventLogView, stored: dict[uuid.UUID, int], killed: float) -> list[float]:
    """Per torrent: how long before the kill the stored progress stopped being the engine's latest."""
    history: dict[uuid.UUID, list[tuple[float, int]]] = {}
    for event in view.of_type("ProgressUpdated"):
        history.setdefault(uuid.UUID(event["torrent"]), []).append((event["t"], event["downloaded"]))
    ages = []
    for torrent, points in history.items():
        have = stored.get(torrent)
        values = [v for _, v in points]
        if have is not None and have >= values[-1]:
            ages.append(0.0)
            continue
        newer = bisect.bisect_right(values, -1 if have is None else have)  # progress only grows
        ages.append(max(0.0, killed - points[newer][0]))
    return ages


def crash_window(*, quick: bool) -> tuple[list[Figure], list[str]]:
    """``kill -9`` at steady state, and right after a burst of new torrents: p99 age of the stored progress."""
    torrents = 500 if quick else 2_000
    figures, notes = [], []
    for label, settle in (("steady", 6.0), ("just after the adds", 0.6)):
        with tempfile.TemporaryDirectory() as tmp, PrivateCluster() as cluster:
            root = Path(tmp)
            with daemon_on(cluster, root, "--sim-torrents", str(torrents), "--sim-steps", "300") as (daemon, log):
                time.sleep(settle)
                killed = time.time()
                daemon.kill()
            ages = sorted(_staleness(EventLogView.read(log), stored_progress(cluster.url, SCHEMA, root), killed))
        p99 = ages[int(len(ages) * 0.99) - 1] if ages else float("inf")
        interval = FLUSH_MS / 1000
        figures.append(Figure(f"p99 stored-progress age, kill -9, {label[:8]}", p99 * 1000, "ms", interval * 1000,
                              "flush ivl", p99 / interval, "report", True))  # fmt: skip
        notes.append(
            f"kill -9 ({label}, {torrents:,} torrents): p99 {p99 * 1000:,.0f} ms, max {ages[-1] * 1000:,.0f} ms"
        )
    return figures, notes
