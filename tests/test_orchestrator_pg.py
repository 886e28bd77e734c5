"""The orchestrator against real PostgreSQL: restarts hydrate every field, outages lose nothing."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest

from revaer_core import RuntimeStore, TorrentState, events
from revaer_core.bus import EventBus
from revaer_core.health import RUNTIME_STORE, StoreRole
from revaer_core.orchestrator import Backoff, TorrentOrchestrator
from revaer_core.settings import RuntimeSettings
from revaer_core.status import FileEntry
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import PrivateCluster, open_pg_store, pg_options

pytestmark = pytest.mark.postgres

FAST = Backoff(initial=0.05, maximum=0.5)
SETTINGS = RuntimeSettings(flush_interval_ms=50, shutdown_deadline_s=10.0)


def tid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n + 1)


def life(bus: EventBus, n: int, *, complete: bool) -> None:
    """Everything an engine says about torrent ``n``, with every kind of field filled in."""
    bus.publish(events.TorrentAdded(torrent_id=tid(n), name=f"Tørrent №{n} 🎬", download_dir=f"/dl/{n}"))
    files = tuple(FileEntry(index=i, path=f"t{n}/f{i}.bin", size=1 << (20 + i), priority=i + 1) for i in range(3))
    bus.publish(events.FilesDiscovered(torrent_id=tid(n), files=files))
    bus.publish(events.StateChanged(torrent_id=tid(n), state=TorrentState.DOWNLOADING))
    for done in (1, 2**40, 2**62 if n % 2 else 2**41):
        bus.publish(
            events.ProgressUpdated(
                torrent_id=tid(n), downloaded=done, total=2**62, download_bps=n * 1000, upload_bps=n, ratio=n / 7
            )
        )
    if complete:
        bus.publish(events.TorrentCompleted(torrent_id=tid(n), library_path=f"/library/{n}"))
    elif n % 5 == 0:
        bus.publish(
            events.StateChanged(torrent_id=tid(n), state=TorrentState.FAILED, failure="tracker: 'unregistered'")
        )


def test_a_fresh_orchestrator_hydrates_the_catalog_it_left(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    bus = EventBus(capacity=100_000)
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    first = TorrentOrchestrator(bus, store, settings=SETTINGS)
    first.start()
    for n in range(300):
        life(bus, n, complete=n % 3 == 0)
    for n in range(0, 300, 10):
        bus.publish(events.TorrentRemoved(torrent_id=tid(n)))
    assert first.close().complete
    store.close()
    before = first.catalog.snapshot()
    assert len(before) == 270

    reopened = open_pg_store(pg_url, pg_schema, tmp_path)
    second = TorrentOrchestrator(EventBus(), reopened, settings=SETTINGS)
    assert second.hydrate() == 270
    assert second.catalog.snapshot() == before  # every field of every torrent
    reopened.close()


def test_postgres_stopped_mid_run_loses_nothing(
    private_cluster: PrivateCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(capacity=100_000)
    store = open_pg_store(private_cluster.url, "revaer_runtime", tmp_path, statement_timeout_ms=2000)
    orchestrator = TorrentOrchestrator(bus, store, settings=SETTINGS, backoff=FAST)
    health: list[frozenset[str]] = []
    bus.subscribe(lambda e: health.append(e.payload.degraded) if isinstance(e.payload, events.HealthChanged) else None)
    orchestrator.start()
    for n in range(50):
        life(bus, n, complete=False)
    assert orchestrator.flush(timeout=20)

    private_cluster.stop()
    with caplog.at_level(logging.WARNING):
        for n in range(50, 100):
            life(bus, n, complete=n % 2 == 0)
        bus.publish(events.TorrentRemoved(torrent_id=tid(3)))  # a removal during the outage
        wait_for(lambda: RUNTIME_STORE in orchestrator.health.degraded)
        time.sleep(1.0)  # longer than the first retries' backoff
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("runtime store write failed" in w for w in warnings)
    assert any(str(tid(3)) in w or str(tid(50)) in w for w in warnings), "the warning names no torrent"

    private_cluster.start()
    wait_for(lambda: orchestrator.health.ok and orchestrator.pending_writes == 0, timeout=30)
    assert health[0] == frozenset({RUNTIME_STORE}) and health[-1] == frozenset()
    catalog = orchestrator.catalog.snapshot()
    assert orchestrator.close().complete
    store.close()

    reader = open_pg_store(private_cluster.url, "revaer_runtime", tmp_path)
    try:
        stored = {s.id: s for s in reader.load_torrents()}
        assert stored == catalog, "the store did not converge to the catalog"
        assert tid(3) not in stored, "a removal made during the outage was lost"
        assert len(stored) == 99
    finally:
        reader.close()


def test_a_client_reads_while_the_daemon_writes(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    bus = EventBus()
    daemon_store = open_pg_store(pg_url, pg_schema, tmp_path)
    orchestrator = TorrentOrchestrator(bus, daemon_store, settings=SETTINGS)
    orchestrator.start()
    life(bus, 1, complete=True)
    assert orchestrator.flush(timeout=10)
    client = RuntimeStore.open(
        PostgresStore(),
        name="postgres",
        options=pg_options(pg_url, pg_schema),
        data_dir=tmp_path,
        role=StoreRole.CLIENT,
    )
    try:
        assert client.get_torrent(tid(1)) == orchestrator.catalog[tid(1)]
    finally:
        client.close()
        orchestrator.close()
        daemon_store.close()
