"""The memory plugin against the conformance suite."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from revaer_core import RuntimeStore, StoreRole
from revaer_core.contract import StoreContract
from revaer_core.contract.base import StoreOpener
from revaer_runtime_memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store_opener(self, tmp_path: Path) -> StoreOpener:
        plugin = MemoryStore()  # one storage per test, shared by every open

        def open_store(*, options: Mapping[str, Any] | None = None, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
            return RuntimeStore.open(plugin, name="memory", options=options, data_dir=tmp_path, role=role)

        return open_store
