"""Progress written in two steps (``prepare_progress``): the flush holds no status while the store writes.

The store encodes the statuses as the writer hands them over; what the writer
needs again afterwards (a failed write to retry, a torrent the store lacks to
upsert whole) it finds in the catalog.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import UTC, datetime

from revaer_core import RuntimeStore, TorrentStatus, events
from revaer_core.bus import EventBus
from revaer_core.orchestrator import Backoff, StoreWriter, TorrentOrchestrator
from revaer_core.settings import RuntimeSettings
from revaer_core.status import Progress
from revaer_core.testing.waiting import wait_for
from tests.support.stores import PreparingStore

FAST = Backoff(initial=0.01, maximum=0.05)


def tid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n + 1)


def started(store: RuntimeStore, *torrents: int) -> tuple[EventBus, TorrentOrchestrator]:
    """A running orchestrator on ``store``, which holds ``torrents`` already."""
    bus = EventBus()
    orchestrator = TorrentOrchestrator(
        bus, store, settings=RuntimeSettings(flush_interval_ms=20, shutdown_deadline_s=2.0), backoff=FAST
    )
    orchestrator.start()
    for n in torrents:
        bus.publish(events.TorrentAdded(torrent_id=tid(n), name=f"t{n}"))
    assert orchestrator.flush(5)
    return bus, orchestrator


def progress(bus: EventBus, n: int, downloaded: int) -> None:
    bus.publish(events.ProgressUpdated(torrent_id=tid(n), downloaded=downloaded, total=100, download_bps=1))


def stored_as_in_catalog(store: RuntimeStore, orchestrator: TorrentOrchestrator) -> bool:
    return {s.id: s for s in store.load_torrents()} == orchestrator.catalog.snapshot()


def test_a_status_replaced_while_its_flush_waits_on_the_store_is_freed_at_once(
    preparing: tuple[RuntimeStore, PreparingStore],
) -> None:
    store, plugin = preparing
    bus, orchestrator = started(store, 1)
    plugin.proceed.clear()
    progress(bus, 1, 10)
    flushed = weakref.ref(orchestrator.catalog[tid(1)])
    wait_for(plugin.writing.is_set)  # the flush took the status, the store encoded it and now "waits on its server"
    progress(bus, 1, 20)
    assert flushed() is None, "the flush in progress still holds the status the catalog replaced"
    plugin.proceed.set()
    assert orchestrator.flush(5)
    assert stored_as_in_catalog(store, orchestrator)
    assert plugin.writes("prepare_progress") and not plugin.writes("update_progress")
    orchestrator.close()


def test_failed_progress_is_written_again_as_the_catalog_holds_it(
    preparing: tuple[RuntimeStore, PreparingStore],
) -> None:
    """One torrent moved again while the failed write ran (its newer status waits), the other did not."""
    store, plugin = preparing
    bus, orchestrator = started(store, 1, 2)
    plugin.proceed.clear()
    progress(bus, 1, 10)
    progress(bus, 2, 10)
    wait_for(plugin.writing.is_set)
    plugin.fail_next = 1
    progress(bus, 1, 30)
    plugin.proceed.set()
    assert orchestrator.flush(5)
    assert plugin.failures == 1
    assert stored_as_in_catalog(store, orchestrator)
    stored = store.get_torrent(tid(2))
    assert stored is not None and stored.progress.downloaded == 10
    orchestrator.close()


def test_a_torrent_the_store_lacks_is_upserted_whole_from_the_catalog(
    preparing: tuple[RuntimeStore, PreparingStore],
) -> None:
    store, plugin = preparing
    bus, orchestrator = started(store, 1)
    progress(bus, 1, 10)
    progress(bus, 2, 10)  # no add before it: the catalog makes the torrent, the store has never seen it
    assert orchestrator.flush(5)
    assert stored_as_in_catalog(store, orchestrator)
    assert plugin.writes("upsert_torrents")[-1] == 1
    orchestrator.close()


def test_a_writer_without_a_catalog_keeps_the_statuses_for_its_retry(
    preparing: tuple[RuntimeStore, PreparingStore],
) -> None:
    store, plugin = preparing
    first = TorrentStatus(id=tid(1), name="one", added_at=datetime.now(UTC), last_updated=datetime.now(UTC))
    store.upsert_torrents([first])
    writer = StoreWriter(store, interval=0.01, backoff=FAST)
    plugin.fail_next = 1
    moved = TorrentStatus(
        id=tid(1),
        name="one",
        added_at=first.added_at,
        last_updated=datetime.now(UTC),
        progress=Progress(downloaded=5, total=9),
    )
    writer.progress(moved)
    writer.start()
    assert writer.flush(5)
    assert writer.close().complete
    assert plugin.failures == 1 and store.get_torrent(tid(1)) == moved
