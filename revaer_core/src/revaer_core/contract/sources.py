"""Contract tests for the source hooks, ``save_torrent_sources`` and ``load_torrent_sources``.

A stored source is what brings a torrent back after a crash when the engine
has no resume data for it, so losing one loses the torrent: every test here
checks that a source is kept exactly, replaced only by a newer one, and gone
only with its torrent. All of them run only for a backend declaring
``Capability.SOURCES``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs
import pytest

from revaer_core.contract import samples
from revaer_core.contract.base import ContractBase, StoreOpener
from revaer_core.query import TorrentQuery
from revaer_core.sources import AddedVia, StoredSource
from revaer_core.status import Progress
from revaer_core.store import RuntimeStore
from revaer_core.storetypes import Capability

SOURCE_CASES = list(samples.source_cases())


def _save_with_statuses(store: RuntimeStore, sources: list[StoredSource]) -> None:
    """Store a status for each source's torrent, then the sources: the order Revaer writes them in."""
    store.upsert_torrents([attrs.evolve(samples.status(0), id=s.torrent_id) for s in sources])
    store.save_torrent_sources(sources)


class SourceStoreContract(ContractBase):
    """What ``save_torrent_sources`` and ``load_torrent_sources`` must do (capability ``sources``)."""

    def test_an_empty_store_holds_no_sources(self, store: RuntimeStore) -> None:
        self.require(store, Capability.SOURCES)
        assert store.load_torrent_sources() == {}

    @pytest.mark.parametrize(("label", "source"), SOURCE_CASES, ids=[label for label, _ in SOURCE_CASES])
    def test_every_source_round_trips(self, store: RuntimeStore, label: str, source: StoredSource) -> None:
        self.require(store, Capability.SOURCES)
        _save_with_statuses(store, [source])
        loaded = store.load_torrent_sources()
        assert loaded == {source.torrent_id: source}, label
        assert type(loaded[source.torrent_id].metainfo) in (bytes, type(None)), "metainfo must come back as bytes"

    def test_a_batch_is_stored_whole(self, store: RuntimeStore) -> None:
        self.require(store, Capability.SOURCES)
        batch = [source for _, source in SOURCE_CASES] + [
            samples.source(n, metainfo=None, magnet=f"magnet:?xt=urn:btih:{n:040x}") for n in range(100, 1_100)
        ]
        _save_with_statuses(store, batch)
        assert store.load_torrent_sources() == {s.torrent_id: s for s in batch}

    def test_a_second_save_replaces_the_source(self, store: RuntimeStore) -> None:
        self.require(store, Capability.SOURCES)
        first = samples.source(1, metainfo=samples.BIG_METAINFO, file_priorities=(1, 2, 3))
        _save_with_statuses(store, [first])
        magnet = attrs.evolve(
            first,
            metainfo=None,
            magnet=f"magnet:?xt=urn:btih:{samples.V1_INFO_HASH}",
            file_priorities=(),
            added_via=AddedVia.CLI,
            added_at=first.added_at + timedelta(minutes=1),
        )
        store.save_torrent_sources([magnet])
        assert store.load_torrent_sources() == {first.torrent_id: magnet}
        back = attrs.evolve(magnet, metainfo=samples.SMALL_METAINFO, magnet=None, file_priorities=(7,))
        store.save_torrent_sources([back])  # and back from a magnet to metainfo
        assert store.load_torrent_sources() == {first.torrent_id: back}

    def test_a_source_for_a_torrent_not_stored_is_dropped(self, store: RuntimeStore) -> None:
        self.require(store, Capability.SOURCES)
        kept, status = samples.source(1), samples.status(1)
        store.upsert_torrents([status])
        stray = samples.source(2, torrent_id=uuid.uuid4())
        store.save_torrent_sources([stray, kept])  # no error, and the stored torrent's source is not lost
        assert store.load_torrent_sources() == {kept.torrent_id: kept}
        assert store.load_torrents() == [status], "a source must not create a torrent"

    def test_sources_leave_with_their_torrent(self, store: RuntimeStore) -> None:
        self.require(store, Capability.SOURCES)
        gone, kept = samples.source(1), samples.source(2, metainfo=samples.BIG_METAINFO)
        _save_with_statuses(store, [gone, kept])
        store.remove_torrents([gone.torrent_id])
        assert store.load_torrent_sources() == {kept.torrent_id: kept}
        store.upsert_torrents([samples.status(1)])  # the same id again: the old incarnation's source stays gone
        assert store.load_torrent_sources() == {kept.torrent_id: kept}

    def test_status_writes_keep_the_source(self, store: RuntimeStore) -> None:
        self.require(store, Capability.SOURCES)
        source = samples.source(1, metainfo=samples.BIG_METAINFO)
        _save_with_statuses(store, [source])
        status = store.get_torrent(source.torrent_id)
        assert status is not None
        store.upsert_torrents([status])  # the same status again
        changed = attrs.evolve(status, paused=True, labels=("kept",), name="renamed")
        store.upsert_torrents([changed])
        moved = attrs.evolve(
            changed,
            progress=Progress(downloaded=999, total=1_000_000),
            last_updated=status.last_updated + timedelta(seconds=1),
        )
        store.update_progress([moved])
        assert store.get_torrent(source.torrent_id) == moved
        assert store.load_torrent_sources() == {source.torrent_id: source}

    def test_statuses_load_the_same_with_or_without_sources(self, store: RuntimeStore) -> None:
        # Hydration reads statuses only: a torrent without a source (added before sources were kept, or
        # by a backend without them) loads like any other, and a source changes nothing in its status.
        self.require(store, Capability.SOURCES)
        with_source, without = samples.status(1), samples.status(2)
        store.upsert_torrents([with_source, without])
        store.save_torrent_sources([samples.source(1, metainfo=samples.BIG_METAINFO)])
        assert sorted(store.load_torrents(), key=lambda s: s.id) == [with_source, without]
        assert store.get_torrent(with_source.id) == with_source
        assert store.list_torrents(TorrentQuery()).items == (with_source, without)

    def test_sources_survive_closing_and_reopening(self, store: RuntimeStore, store_opener: StoreOpener) -> None:
        self.require(store, Capability.SOURCES)
        self.require(store, Capability.DURABLE)
        batch = [source for _, source in SOURCE_CASES]
        _save_with_statuses(store, batch)
        store.close()
        reopened = store_opener()
        try:
            assert reopened.load_torrent_sources() == {s.torrent_id: s for s in batch}
        finally:
            reopened.close()
