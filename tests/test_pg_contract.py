"""The PostgreSQL store against the conformance suite, one fresh schema per test."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from revaer_core import RuntimeStore, StoreRole
from revaer_core.contract import StoreContract, samples
from revaer_core.contract.base import UNKNOWN_OPTIONS, StoreOpener
from revaer_core.testing.jobs import job_started
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import open_pg_store, pg_options

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_opener(self, pg_url: str, pg_schema: str, tmp_path: Path) -> StoreOpener:
        def open_store(*, options: Mapping[str, Any] | None = None, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
            merged = {**pg_options(pg_url, pg_schema), **(options or {})}
            return RuntimeStore.open(PostgresStore(), name="postgres", options=merged, data_dir=tmp_path, role=role)

        return open_store

    @pytest.fixture
    def bad_options(self) -> Sequence[Mapping[str, Any]]:
        return [
            UNKNOWN_OPTIONS,
            {"pool_size": "five"},
            {"auto_migrate": 3},
            {"dsn": 5},
            {"statement_timeout_ms": 1.5},
            {"schema": 7},
            {"pool_size": 0},
        ]


def _first_starts_at_once(store: RuntimeStore, torrent_id: uuid.UUID, threads: int) -> list[Exception]:
    """Start the job of ``torrent_id`` from ``threads`` threads released together; the errors they hit."""
    start = threading.Barrier(threads)
    errors: list[Exception] = []

    def first_start() -> None:
        start.wait()
        try:
            job_started(store, torrent_id, "/srv/downloads/x", at=samples.EPOCH)
        except Exception as exc:  # reported by the caller
            errors.append(exc)

    workers = [threading.Thread(target=first_start) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def test_first_starts_of_one_job_from_many_threads_keep_one_history(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    """Two first transitions of a job racing to create its row: the loser reads the winner's and goes on top.

    The race check once read ``rowcount`` of ``INSERT … ON CONFLICT DO NOTHING``,
    which is -1 there, so both wrote history row 1 and one failed.
    """
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        for n in range(5):
            status = samples.status(n)
            store.upsert_torrents([status])
            assert _first_starts_at_once(store, status.id, 6) == []
            assert [e.seq for e in store.job_history(status.id)] == [1, 2, 3, 4, 5, 6]
            job = store.get_job(status.id)
            assert job is not None and job.attempt == 6
    finally:
        store.close()
