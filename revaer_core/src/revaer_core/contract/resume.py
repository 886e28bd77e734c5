"""Contract tests for ``save_resume_data_batch``: the writer's way of storing resume data.

The write-behind writer hands a store the latest resume data of many torrents
at once, right after their statuses. Every test runs through the facade
(:meth:`RuntimeStore.save_resume_data_batch`), so a backend without the batch
hook is held to the same outcome through its single ``save_resume_data``.
All of them run only for a backend declaring ``Capability.RESUME_DATA``.
"""

from __future__ import annotations

import os
import uuid

from revaer_core.contract import samples
from revaer_core.contract.base import ContractBase, StoreOpener
from revaer_core.health import Capability
from revaer_core.store import RuntimeStore

#: About the size of libtorrent's resume data, and bytes no text encoding survives.
BLOB = bytes(range(256)) * 48


class ResumeDataContract(ContractBase):
    """What a batch of resume data must do (capability ``resume_data``)."""

    def test_a_batch_round_trips_every_blob(self, store: RuntimeStore) -> None:
        self.require(store, Capability.RESUME_DATA)
        statuses = [samples.status(n) for n in range(1_500)]
        store.upsert_torrents(statuses)
        items = [(s.id, BLOB + n.to_bytes(4, "big")) for n, s in enumerate(statuses)]
        items[0] = (statuses[0].id, b"")  # empty is data too
        items[1] = (statuses[1].id, b"\x00" * 3)
        store.save_resume_data_batch(items)
        loaded = store.load_resume_data()
        assert loaded == dict(items)
        assert all(type(blob) is bytes for blob in loaded.values()), "resume data must come back as bytes"

    def test_a_batch_skips_torrents_not_stored_and_keeps_the_rest(self, store: RuntimeStore) -> None:
        self.require(store, Capability.RESUME_DATA)
        kept = samples.status(1)
        store.upsert_torrents([kept])
        store.save_resume_data_batch([(uuid.uuid4(), b"nobody's"), (kept.id, b"kept"), (uuid.uuid4(), b"x")])
        assert store.load_resume_data() == {kept.id: b"kept"}

    def test_a_later_batch_replaces_and_single_saves_mix(self, store: RuntimeStore) -> None:
        self.require(store, Capability.RESUME_DATA)
        a, b = samples.status(1), samples.status(2)
        store.upsert_torrents([a, b])
        store.save_resume_data_batch([(a.id, b"a1"), (b.id, b"b1")])
        store.save_resume_data(a.id, b"a2")
        store.save_resume_data_batch([(b.id, b"b2")])
        assert store.load_resume_data() == {a.id: b"a2", b.id: b"b2"}

    def test_batched_resume_data_survives_a_reopen_and_leaves_with_its_torrent(
        self, store: RuntimeStore, store_opener: StoreOpener
    ) -> None:
        self.require(store, Capability.RESUME_DATA)
        self.require(store, Capability.DURABLE)
        a, b = samples.status(1), samples.status(2)
        store.upsert_torrents([a, b])
        blob = os.urandom(12_000)
        store.save_resume_data_batch([(a.id, blob), (b.id, b"gone")])
        store.remove_torrents([b.id])
        store.close()
        reopened = store_opener()
        try:
            assert reopened.load_resume_data() == {a.id: blob}
            assert [s.id for s in reopened.load_torrents()] == [a.id], "resume data is kept apart from statuses"
        finally:
            reopened.close()
