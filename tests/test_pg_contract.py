"""The PostgreSQL store against the conformance suite, one fresh schema per test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from revaer_core import RuntimeStore, StoreRole
from revaer_core.contract import StoreContract
from revaer_core.contract.base import UNKNOWN_OPTIONS, StoreOpener
from revaer_runtime_pg import PostgresStore
from tests.support.postgres import pg_options

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
