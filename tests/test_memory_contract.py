"""The memory plugin against the conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core import RuntimeStore
from revaer_core.contract import StoreContract
from revaer_core.contract.base import StoreOpener
from revaer_runtime_memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store_opener(self, tmp_path: Path) -> StoreOpener:
        plugin = MemoryStore()  # one storage per test, shared by every open
        return lambda: RuntimeStore.open(plugin, name="memory", data_dir=tmp_path)
