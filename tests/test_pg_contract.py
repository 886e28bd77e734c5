"""The PostgreSQL store against the conformance suite, one fresh schema per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core import RuntimeStore
from revaer_core.contract import StoreContract
from revaer_core.contract.base import StoreOpener
from revaer_runtime_pg import PostgresStore
from tests.support.postgres import pg_options

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_opener(self, pg_url: str, pg_schema: str, tmp_path: Path) -> StoreOpener:
        return lambda: RuntimeStore.open(
            PostgresStore(), name="postgres", options=pg_options(pg_url, pg_schema), data_dir=tmp_path
        )
