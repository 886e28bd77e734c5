"""A server that goes away and comes back, on a private cluster (never the shared server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core import RuntimeStore, StoreUnavailable
from revaer_core.contract import samples
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import PrivateCluster, pg_options

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_writes_fail_in_one_line_while_the_server_is_down_and_work_again_after(
    private_cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVAER_DATABASE_URL", raising=False)
    store = RuntimeStore.open(
        PostgresStore(),
        name="postgres",
        options=pg_options(private_cluster.url, "revaer_runtime", connect_timeout_s=2),
        data_dir=tmp_path,
    )
    try:
        store.upsert_torrents([samples.status(1)])
        private_cluster.stop()
        with pytest.raises(StoreUnavailable) as caught:
            store.upsert_torrents([samples.status(2)])
        assert "\n" not in str(caught.value)
        health = store.health()
        assert not health.ok and "\n" not in health.detail

        private_cluster.start()
        for _ in range(2):  # the first call after an outage may meet a pooled connection that died with it
            try:
                store.upsert_torrents([samples.status(2)])
                break
            except StoreUnavailable:
                continue
        assert {s.id for s in store.load_torrents()} == {samples.status(1).id, samples.status(2).id}
        health = store.health()
        assert health.ok and health.facts["writer lock"] == "held"  # taken again on a new connection
    finally:
        store.close()


def test_a_killed_server_restarts_with_committed_data(private_cluster: PrivateCluster, tmp_path: Path) -> None:
    options = pg_options(private_cluster.url, "revaer_runtime")
    store = RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir=tmp_path)
    store.upsert_torrents([samples.status(n) for n in range(5)])
    store.close()
    private_cluster.kill()
    assert not private_cluster.running
    private_cluster.start()
    private_cluster.wait_ready()
    reopened = RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir=tmp_path)
    try:
        assert len(reopened.load_torrents()) == 5
    finally:
        reopened.close()
