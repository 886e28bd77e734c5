"""PostgreSQL stopped, or its connections cut, under a running ``revaer run`` with events and FsOps jobs.

The daemon must stay up, report ``degraded`` on ``GET /health`` and recover,
and once stopped cleanly the store must hold exactly what the engine's event
log says: every torrent's last state and progress, no torrent removed during
the outage, every FsOps job finished with one history row per transition.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from revaer_core import JobEvent, JobStatus, RuntimeStore, StoreRole, TorrentState
from revaer_core.testing.process import DaemonProcess, Daemons, EventLogView, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import PrivateCluster, pg_options
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "outage"
SEED, TORRENTS, FILES, STEPS = 7, 24, 2, 40  # every torrent completes ~2 s after start (20 steps/s)
#: Removed while the store is unreachable: two while downloading, one after its FsOps job ran.
REMOVALS = {3: 20, 7: 30, 11: 70}


def expected_from_log(log: EventLogView) -> dict[uuid.UUID, tuple[TorrentState, int]]:
    """The catalog the engine's events add up to: each torrent's last state and progress."""
    catalog: dict[uuid.UUID, tuple[TorrentState, int]] = {}
    for event in log.events:
        if "torrent" not in event:
            continue
        torrent = uuid.UUID(event["torrent"])
        state, downloaded = catalog.get(torrent, (TorrentState.QUEUED, 0))
        match event["type"]:
            case "TorrentAdded":
                catalog[torrent] = (state, downloaded)
            case "TorrentRemoved":
                catalog.pop(torrent, None)
            case "ProgressUpdated":
                catalog[torrent] = (state, event["downloaded"])
            case "TorrentCompleted":
                catalog[torrent] = (TorrentState.COMPLETED, downloaded)
            case "StateChanged" if state is not TorrentState.COMPLETED:  # a completed torrent seeding stays completed
                catalog[torrent] = (TorrentState(event["state"]), downloaded)
    return catalog


def outage_config(tmp_path: Path, dsn: str) -> Path:
    downloads = tmp_path / "downloads"
    for n in range(TORRENTS):  # the payloads the simulated engine "downloads", for FsOps to copy
        folder = downloads / f"sim-{SEED}-{n:05d}"
        folder.mkdir(parents=True)
        for i in range(FILES):
            (folder / f"file-{i:03d}.bin").write_bytes(f"{n}:{i}".encode() * 100)
    (tmp_path / "library").mkdir()
    return write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data"), "flush_interval_ms": 100},
            "runtime.postgres": pg_options(dsn, SCHEMA, connect_timeout_s=2, statement_timeout_ms=2000),
            "engine": {"download_dir": str(downloads)},
            "api": {"host": "127.0.0.1", "port": 0},
            "fsops": {"enabled": True, "library_root": str(tmp_path / "library"), "transfer_mode": "copy"},
        },
    )


def start(daemons: Daemons, config: Path, log: Path) -> DaemonProcess:
    args = ["--sim-torrents", str(TORRENTS), "--sim-files", str(FILES)]
    args += ["--sim-steps", str(STEPS), "--sim-seed", str(SEED), "--event-log", str(log)]
    args += [a for n, step in REMOVALS.items() for a in ("--sim-remove", f"{n}@{step}")]
    daemon = daemons(*args, config=config)
    daemon.wait_running()
    wait_for(lambda: bool(EventLogView.read(log).written), "the first committed flush", timeout=20)
    return daemon


def engine_finished(log: Path) -> Callable[[], bool]:
    """Every removal made and every remaining torrent's FsOps job finished, per the event log."""

    def done() -> bool:
        view = EventLogView.read(log)
        finished = len(view.of_type("FsOpsCompleted")) + len(view.of_type("FsOpsFailed"))
        return len(view.of_type("TorrentRemoved")) == len(REMOVALS) and finished >= TORRENTS - 2

    return done


def degraded(daemon: DaemonProcess) -> bool:
    health = daemon.health()
    return health["status"] == "degraded" and "runtime_store" in health["degraded"]


def check_converged(cluster: PrivateCluster, log_path: Path, tmp_path: Path) -> None:
    """After a clean stop: the store is the event log's catalog, removals kept, each job's history once."""
    log = EventLogView.read(log_path)
    expected = expected_from_log(log)
    removed = {uuid.UUID(e["torrent"]) for e in log.of_type("TorrentRemoved")}
    assert len(removed) == len(REMOVALS)
    client = RuntimeStore.open(
        PostgresStore(), name="postgres", options=pg_options(cluster.url, SCHEMA), data_dir=tmp_path,
        role=StoreRole.CLIENT,
    )  # fmt: skip
    try:
        stored = {s.id: (s.state, s.progress.downloaded) for s in client.load_torrents()}
        assert stored == expected, "the store did not converge to the engine's catalog"
        assert not removed & set(stored), "a removal made during the outage was lost"
        for torrent in removed:
            assert client.get_job(torrent) is None and not client.job_history(torrent)
        for torrent in expected:
            job = client.get_job(torrent)
            assert job is not None and job.status is JobStatus.MOVED, (torrent, job)
            history = client.job_history(torrent)
            assert [h.event for h in history] == [JobEvent.STARTED, JobEvent.COMPLETED], (
                f"job history of {torrent} is not one start and one completion: {history}"
            )
            assert [h.seq for h in history] == [1, 2]
    finally:
        client.close()


def test_postgres_stopped_longer_than_the_backoff_then_restarted(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    log = tmp_path / "events.jsonl"
    daemon = start(daemons, outage_config(tmp_path, private_cluster.url), log)
    private_cluster.stop()
    stopped = time.monotonic()
    wait_for(lambda: degraded(daemon), "GET /health to report runtime_store degraded", timeout=30)
    wait_for(engine_finished(log), "the engine's removals and FsOps jobs during the outage", timeout=60)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - stopped)))  # beyond the first retries' backoff (0.2 s, doubling)
    assert daemon.alive, daemon.stderr
    private_cluster.start()
    try:
        wait_for(lambda: daemon.health()["status"] == "ok", "GET /health to recover", timeout=60)
    except AssertionError:
        raise AssertionError(f"{daemon.health()}\n{daemon.stderr[-5000:]}") from None
    assert daemon.terminate() == 0, daemon.stderr  # exit 0: nothing left unwritten
    assert "runtime store write failed" in daemon.stderr
    check_converged(private_cluster, log, tmp_path)


def test_connections_cut_again_and_again_by_a_proxy(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    with TcpProxy(private_cluster.port) as proxy:
        log = tmp_path / "events.jsonl"
        daemon = start(daemons, outage_config(tmp_path, proxy.url()), log)
        finished = engine_finished(log)
        flaps = 0
        while not finished() or flaps < 6:  # cut mid-flush and mid-job, again and again
            proxy.cut()
            time.sleep(0.3)
            proxy.restore()
            time.sleep(0.25)
            flaps += 1
            assert flaps < 200, "the engine never finished"
        proxy.cut()  # then one long outage
        wait_for(lambda: degraded(daemon), "GET /health to report runtime_store degraded", timeout=30)
        time.sleep(2.0)
        assert daemon.alive, daemon.stderr
        proxy.restore()
        wait_for(lambda: daemon.health()["status"] == "ok", "GET /health to recover", timeout=60)
        assert proxy.cuts > 0
        assert daemon.terminate() == 0, daemon.stderr
    check_converged(private_cluster, log, tmp_path)


def test_expected_catalog_follows_the_log() -> None:
    """The oracle itself: removal drops a torrent, a completed torrent that seeds stays completed."""
    a, b = uuid.uuid4(), uuid.uuid4()
    events: list[dict[str, Any]] = [
        {"type": "TorrentAdded", "torrent": str(a)},
        {"type": "StateChanged", "torrent": str(a), "state": "downloading"},
        {"type": "ProgressUpdated", "torrent": str(a), "downloaded": 5},
        {"type": "TorrentCompleted", "torrent": str(a)},
        {"type": "StateChanged", "torrent": str(a), "state": "seeding"},
        {"type": "TorrentAdded", "torrent": str(b)},
        {"type": "TorrentRemoved", "torrent": str(b)},
    ]
    view = EventLogView(events=tuple({"k": "event", **e} for e in events), written=())
    assert expected_from_log(view) == {a: (TorrentState.COMPLETED, 5)}
