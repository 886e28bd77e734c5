"""Contract tests for the TorrentStore hooks."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs
import pytest

from revaer_core.contract import samples
from revaer_core.contract.base import ContractBase, StoreOpener
from revaer_core.query import Cursor, TorrentQuery, TorrentSort, walk
from revaer_core.status import MAX_BYTES, Progress, Rates, TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore
from revaer_core.storetypes import Capability
from revaer_core.testing.jobs import job_started

EDGE_CASES = list(samples.edge_cases())


class TorrentStoreContract(ContractBase):
    """What ``upsert_torrents``, ``remove_torrents``, ``load_torrents``, ``get_torrent``
    and ``list_torrents`` (and the resume-data hooks, where declared) must do.

    The source hooks have a class of their own, :class:`~revaer_core.contract.sources.SourceStoreContract`."""

    # -- round trips -------------------------------------------------------------

    def test_empty_store_holds_nothing(self, store: RuntimeStore) -> None:
        assert store.load_torrents() == []
        assert store.get_torrent(uuid.uuid4()) is None
        assert store.list_torrents(TorrentQuery()).items == ()

    @pytest.mark.parametrize(("label", "status"), EDGE_CASES, ids=[label for label, _ in EDGE_CASES])
    def test_every_field_round_trips(self, store: RuntimeStore, label: str, status: TorrentStatus) -> None:
        assert not store.upsert_torrents([status]), f"{label}: the store reported the row as not stored exactly"
        assert store.get_torrent(status.id) == status
        assert store.load_torrents() == [status]

    def test_empty_and_absent_file_lists_stay_apart(self, store: RuntimeStore) -> None:
        empty, absent = samples.status(1, files=()), samples.status(2, files=None)
        store.upsert_torrents([empty, absent])
        assert store.get_torrent(empty.id) is not None and store.get_torrent(empty.id).files == ()  # type: ignore[union-attr]
        assert store.get_torrent(absent.id) is not None and store.get_torrent(absent.id).files is None  # type: ignore[union-attr]

    # -- upserts -------------------------------------------------------------------

    def test_upsert_is_idempotent(self, store: RuntimeStore) -> None:
        batch = [samples.status(n) for n in range(5)]
        store.upsert_torrents(batch)
        store.upsert_torrents(batch)
        assert sorted(store.load_torrents(), key=lambda s: s.id) == sorted(batch, key=lambda s: s.id)

    def test_upsert_replaces_every_field(self, store: RuntimeStore) -> None:
        _, full = EDGE_CASES[1]
        store.upsert_torrents([full])
        bare = attrs.evolve(
            full,
            name=None,
            state=TorrentState.FAILED,
            failure="disk full",
            files=None,
            library_path=None,
            completed_at=None,
            sequential=False,
            info_hash=None,
            paused=False,
            labels=(),
            download_limit=None,
            upload_limit=None,
            last_updated=full.last_updated + timedelta(minutes=5),
        )
        store.upsert_torrents([bare])
        assert store.get_torrent(full.id) == bare

    def test_the_users_choices_change_alone(self, store: RuntimeStore) -> None:
        # Pausing, labelling or limiting a torrent changes nothing else: the upsert must still store it.
        plain = samples.status(1)
        store.upsert_torrents([plain])
        chosen = attrs.evolve(plain, paused=True, labels=("b", "a"), download_limit=0, upload_limit=MAX_BYTES)
        store.upsert_torrents([chosen])
        assert store.get_torrent(plain.id) == chosen
        assert chosen.labels == ("a", "b")
        store.upsert_torrents([plain])
        assert store.load_torrents() == [plain]

    def test_a_large_batch_is_stored_whole(self, store: RuntimeStore) -> None:
        batch = [samples.status(n) for n in range(2_000)]
        store.upsert_torrents(batch)
        assert len(store.load_torrents()) == 2_000
        assert store.get_torrent(batch[1_234].id) == batch[1_234]

    def test_progress_updates_store_progress_and_unknown_torrents_whole(self, store: RuntimeStore) -> None:
        _, full = EDGE_CASES[1]
        store.upsert_torrents([full])
        moved = attrs.evolve(
            full,
            progress=Progress(downloaded=4_999, total=5_000, eta_seconds=None),
            rates=Rates(download_bps=2**40, upload_bps=7, ratio=0.125),
            last_updated=full.last_updated + timedelta(seconds=1),
        )
        new = samples.status(77)  # never upserted: the facade stores it whole
        store.update_progress([moved, new])
        assert store.get_torrent(full.id) == moved
        assert store.get_torrent(new.id) == new

    # -- removal ---------------------------------------------------------------------

    def test_removing_an_unknown_id_is_a_no_op(self, store: RuntimeStore) -> None:
        kept = samples.status(1)
        store.upsert_torrents([kept])
        store.remove_torrents([uuid.uuid4(), uuid.uuid4()])
        assert store.load_torrents() == [kept]

    def test_removal_deletes_only_the_named_torrents(self, store: RuntimeStore) -> None:
        batch = [samples.status(n) for n in range(6)]
        store.upsert_torrents(batch)
        store.remove_torrents([batch[0].id, batch[3].id])
        assert {s.id for s in store.load_torrents()} == {batch[n].id for n in (1, 2, 4, 5)}
        assert store.get_torrent(batch[0].id) is None

    def test_removed_torrent_can_be_added_again(self, store: RuntimeStore) -> None:
        status = samples.status(1)
        store.upsert_torrents([status])
        store.remove_torrents([status.id])
        store.upsert_torrents([status])
        assert store.load_torrents() == [status]

    # -- listing -----------------------------------------------------------------------

    def test_list_filters_by_state(self, store: RuntimeStore) -> None:
        states = [TorrentState.DOWNLOADING, TorrentState.SEEDING, TorrentState.STOPPED]
        batch = [samples.status(n, state=states[n % 3]) for n in range(12)]
        store.upsert_torrents(batch)
        query = TorrentQuery(states={TorrentState.SEEDING, TorrentState.STOPPED})
        listed = list(walk(store.list_torrents, query))
        assert {s.id for s in listed} == {s.id for s in batch if s.state in query.states}

    def test_list_filters_by_name_ignoring_case(self, store: RuntimeStore) -> None:
        store.upsert_torrents(
            [samples.status(1, name="Big Buck Bunny"), samples.status(2, name="Sintel"), samples.status(3, name=None)]
        )
        listed = store.list_torrents(TorrentQuery(name_contains="buck bun")).items
        assert [s.name for s in listed] == ["Big Buck Bunny"]

    @pytest.mark.parametrize("sort", list(TorrentSort))
    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    def test_pages_cover_every_row_once_in_order(
        self, store: RuntimeStore, sort: TorrentSort, descending: bool
    ) -> None:
        # Shared names and shared timestamps force the id tie-break.
        batch = [
            samples.status(
                n,
                name=None if n % 7 == 0 else f"name-{n % 4}",
                added_at=samples.EPOCH + timedelta(seconds=n // 3),
                last_updated=samples.EPOCH + timedelta(seconds=n // 2),
            )
            for n in range(40)
        ]
        store.upsert_torrents(batch)
        query = TorrentQuery(sort=sort, descending=descending, limit=7)
        listed = list(walk(store.list_torrents, query))
        assert [s.id for s in listed] == [s.id for s in sorted(batch, key=query.key, reverse=descending)]

    def test_paging_neither_skips_nor_repeats_under_concurrent_inserts(self, store: RuntimeStore) -> None:
        original = [samples.status(n * 2) for n in range(30)]
        store.upsert_torrents(original)
        query = TorrentQuery(limit=4)
        seen: list[uuid.UUID] = []
        inserted = 0
        while True:
            page = store.list_torrents(query)
            seen.extend(s.id for s in page.items)
            # Rows land before and after the cursor between every two pages.
            store.upsert_torrents([samples.status(1000 + inserted), samples.status(inserted * 2 + 1)])
            inserted += 1
            if page.next_cursor is None:
                break
            query = attrs.evolve(query, after=Cursor.decode(page.next_cursor))
        assert len(seen) == len(set(seen)), "a row was listed twice"
        assert {s.id for s in original} <= set(seen), "a row that existed before paging began was skipped"

    def test_a_page_size_of_one_ends_with_no_cursor(self, store: RuntimeStore) -> None:
        only = samples.status(1)
        store.upsert_torrents([only])
        page = store.list_torrents(TorrentQuery(limit=1))
        assert page.items == (only,)
        assert page.next_cursor is None

    # -- optional abilities ----------------------------------------------------------------

    def test_resume_data_round_trips_and_leaves_with_its_torrent(self, store: RuntimeStore) -> None:
        self.require(store, Capability.RESUME_DATA)
        kept, removed = samples.status(1), samples.status(2)
        store.upsert_torrents([kept, removed])
        blob = bytes(range(256)) * 48  # ~12 KB, every byte value
        store.save_resume_data(kept.id, blob)
        store.save_resume_data(removed.id, b"\x00")
        store.save_resume_data(uuid.uuid4(), b"for a torrent that is not stored")
        store.remove_torrents([removed.id])
        assert store.load_resume_data() == {kept.id: blob}
        store.save_resume_data(kept.id, b"newer")
        assert store.load_resume_data() == {kept.id: b"newer"}
        assert store.load_torrents() == [kept]

    def test_data_survives_closing_and_reopening(self, store: RuntimeStore, store_opener: StoreOpener) -> None:
        self.require(store, Capability.DURABLE)
        batch = [status for _, status in EDGE_CASES]
        store.upsert_torrents(batch)
        job_started(store, batch[0].id, "/downloads/x", at=samples.EPOCH)
        store.close()
        reopened = store_opener()
        try:
            assert sorted(reopened.load_torrents(), key=lambda s: s.id) == sorted(batch, key=lambda s: s.id)
            assert len(reopened.job_history(batch[0].id)) == 1
        finally:
            reopened.close()
