"""Contract tests for the StoreLifecycle hooks, and for optional hooks called directly."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from revaer_core.contract import samples
from revaer_core.contract.base import ContractBase, StoreOpener
from revaer_core.errors import ConfigError
from revaer_core.plugins import implemented_hooks
from revaer_core.store import RuntimeStore
from revaer_core.storetypes import Capability, StoreHealth

#: The hooks a declared capability promises.
CAPABILITY_HOOKS: Mapping[Capability, tuple[str, ...]] = {
    Capability.RESUME_DATA: ("save_resume_data", "load_resume_data"),
    Capability.SOURCES: ("save_torrent_sources", "load_torrent_sources"),
}


class LifecycleContract(ContractBase):
    """What ``store_configure``, ``store_health`` and ``store_close`` must do, and what a declaration promises."""

    def test_unknown_and_ill_typed_options_are_refused(
        self, store: RuntimeStore, store_opener: StoreOpener, bad_options: Sequence[Mapping[str, Any]]
    ) -> None:
        kept = samples.status(1)
        store.upsert_torrents([kept])
        assert bad_options, "the bad_options fixture must name at least one table to refuse"
        for options in bad_options:
            with pytest.raises(ConfigError) as refused:
                store_opener(options=options).close()  # closed only if it was wrongly accepted
            named = [key for key in options if key in refused.value.key]
            assert named, f"the ConfigError for {dict(options)!r} names {refused.value.key!r}, not the bad key"
        assert store.load_torrents() == [kept], "refusing a second store's options must cost the first nothing"

    def test_health_is_a_report_and_never_raises_even_after_close(self, store: RuntimeStore) -> None:
        health = store.health()
        assert isinstance(health, StoreHealth) and health.ok, health
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in health.facts.items())
        store.close()
        after = store.health()  # the health endpoint may ask while the daemon shuts down
        assert isinstance(after, StoreHealth)

    def test_declared_capabilities_come_with_their_hooks(self, store: RuntimeStore) -> None:
        implemented = set(implemented_hooks(store.plugin))
        for capability in store.capabilities():
            missing = [h for h in CAPABILITY_HOOKS.get(capability, ()) if h not in implemented]
            assert not missing, f"declares {capability.value!r} but does not implement {', '.join(missing)}"
        hooks = self.hooks(store)
        if "store_health" in implemented:
            assert isinstance(hooks.store_health(), StoreHealth), "store_health must return a StoreHealth"
        if "load_resume_data" in implemented:
            assert hooks.load_resume_data() == {}, "an empty store's load_resume_data is an empty mapping"
        if "load_torrent_sources" in implemented:
            assert hooks.load_torrent_sources() == {}, "an empty store's load_torrent_sources is an empty mapping"

    def test_update_progress_itself_updates_and_names_what_it_lacks(self, store: RuntimeStore) -> None:
        # Through the facade a missing or sloppy update_progress is hidden by an upsert; here it is not.
        self.require_hook(store, "update_progress")
        stored = samples.status(1)
        store.upsert_torrents([stored])
        moved = samples.progressed(stored, 777_777, last_updated=stored.last_updated + timedelta(seconds=2))
        absent = samples.status(2)
        missing = self.hooks(store).update_progress(statuses=[moved, absent])
        assert missing is not None, "update_progress must return the ids it does not hold (empty when none)"
        assert set(missing) == {absent.id}
        assert store.get_torrent(stored.id) == moved
        assert list(self.hooks(store).update_progress(statuses=[moved])) == []

    def test_prepare_progress_reads_at_once_keeps_no_status_and_writes_when_called(self, store: RuntimeStore) -> None:
        self.require_hook(store, "prepare_progress")
        stored = samples.status(1)
        store.upsert_torrents([stored])
        later = stored.last_updated + timedelta(seconds=2)
        handed = [samples.progressed(stored, 777_777, last_updated=later), samples.status(2)]
        gone = [weakref.ref(s) for s in handed]
        absent = handed[1].id
        statuses = iter(handed)
        del handed
        write = self.hooks(store).prepare_progress(statuses=statuses)
        assert callable(write), "prepare_progress must return the write, a function of no arguments"
        assert next(statuses, None) is None, "prepare_progress must read every status before it returns"
        assert [ref() for ref in gone] == [None, None], "prepare_progress must keep nothing of a status but its values"
        assert store.get_torrent(stored.id) == stored, "nothing may be written before the write is called"
        assert set(write()) == {absent}, "the write returns the ids it does not hold"
        assert store.get_torrent(stored.id) == samples.progressed(stored, 777_777, last_updated=later)

    def test_upsert_itself_reports_nothing_for_a_plain_batch(self, store: RuntimeStore) -> None:
        batch = [samples.status(n) for n in range(3)]
        reported = self.hooks(store).upsert_torrents(statuses=batch)
        assert not reported, f"plain statuses were reported as not stored exactly: {reported!r}"
        assert store.get_torrent(batch[2].id) == batch[2]
