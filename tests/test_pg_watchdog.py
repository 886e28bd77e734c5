"""Client-side deadlines: a call to a frozen server is cut, and health says so while it still waits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from revaer_core import StoreUnavailable
from revaer_core.contract import samples
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg import database
from revaer_runtime_pg.testing import PrivateCluster, open_pg_store

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_call_to_a_frozen_server_is_cut_and_health_answers_meanwhile(
    private_cluster: PrivateCluster, pg_url: str, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database.WATCHDOG, "default_s", 5.0)  # the mechanism, not the 15 s default
    monkeypatch.setattr(database, "STALL_S", 0.5)
    store = open_pg_store(private_cluster.url, "watchdog", tmp_path)
    try:
        store.upsert_torrents([samples.status(1)])
        outcome: list[BaseException | None] = []

        def write() -> None:
            try:
                store.upsert_torrents([samples.status(2)])
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        with private_cluster.frozen():
            writer = threading.Thread(target=write)
            writer.start()
            wait_for(lambda: database.WATCHDOG.stalled() > 0.5, "the write to be waiting on the frozen server")
            health = store.health()  # from the watchdog's view, without asking the frozen server
            assert not health.ok and "has not answered a call" in health.detail, health
            other = open_pg_store(pg_url, pg_schema, tmp_path / "other")
            try:  # a store on another server is not told of this one's hung call
                assert other.health().ok, other.health()
            finally:
                other.close()
            writer.join(timeout=30)
            assert not writer.is_alive(), "the write to a frozen server was never cut"
        assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable), outcome
        store.upsert_torrents([samples.status(2)])  # after the thaw: a fresh connection, the retry lands
        assert {s.id for s in store.load_torrents()} == {samples.status(1).id, samples.status(2).id}
        assert store.health().ok
    finally:
        store.close()
