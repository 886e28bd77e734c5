"""A lock held on the torrents table: the writer times out per statement, retries, and events keep flowing."""

from __future__ import annotations

import gc
import logging
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from revaer_core import RuntimeStore, TorrentState
from revaer_core.bus import EventBus
from revaer_core.events import ProgressUpdated, StateChanged, TorrentAdded
from revaer_core.health import RUNTIME_STORE
from revaer_core.orchestrator import Backoff, TorrentOrchestrator
from revaer_core.settings import RuntimeSettings
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import PrivateCluster, pg_options

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "locks"
STATEMENT_TIMEOUT_MS = 300


def test_a_locked_table_times_the_writer_out_without_blocking_events(
    private_cluster: PrivateCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = pg_options(private_cluster.url, SCHEMA, statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    store = RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir=tmp_path)
    bus = EventBus(capacity=100_000)
    orchestrator = TorrentOrchestrator(
        bus, store, settings=RuntimeSettings(flush_interval_ms=50), backoff=Backoff(initial=0.1, maximum=0.5)
    )
    orchestrator.start()
    ids = [uuid.uuid4() for _ in range(20)]
    try:
        for n, torrent in enumerate(ids):
            bus.publish(TorrentAdded(torrent_id=torrent, name=f"t{n}"))
            bus.publish(StateChanged(torrent_id=torrent, state=TorrentState.DOWNLOADING))
        assert orchestrator.flush(timeout=20)

        with psycopg.connect(private_cluster.url) as holder, caplog.at_level(logging.WARNING):
            holder.execute(f'LOCK TABLE "{SCHEMA}".torrents IN ACCESS EXCLUSIVE MODE')  # held until rollback
            slowest = 0.0
            # Objects left by earlier tests in this process would make a full collection, timed below, take
            # long; frozen, they are not scanned, and what is timed is the handler and the store alone.
            gc.collect()
            gc.freeze()
            for step in range(1, 41):  # two seconds of progress, each event handled at once
                for torrent in ids:
                    started = time.perf_counter()
                    bus.publish(ProgressUpdated(torrent_id=torrent, downloaded=step * 1000, total=40_000))
                    slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.05)
            gc.unfreeze()
            # degraded while the lock is still held: the writer gave up on its statement instead of waiting
            wait_for(lambda: RUNTIME_STORE in orchestrator.health.degraded, "runtime_store degraded", timeout=30)
            assert orchestrator.catalog[ids[0]].progress.downloaded == 40_000  # the catalog kept up
            holder.rollback()  # the lock goes
        # an event that waited on the store would wait out at least one statement timeout
        assert slowest < STATEMENT_TIMEOUT_MS / 1000, f"an event waited {slowest:.3f} s on the locked store"
        reasons = [r.getMessage() for r in caplog.records if "runtime store write failed" in r.getMessage()]
        assert reasons and "statement timeout" in reasons[0], reasons

        wait_for(
            lambda: orchestrator.health.ok and orchestrator.pending_writes == 0, "the writer to catch up", timeout=30
        )
        stored = {s.id: s for s in store.load_torrents()}
        assert stored == orchestrator.catalog.snapshot()
    finally:
        orchestrator.close()
        store.close()
