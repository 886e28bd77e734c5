"""Fixtures every contract class shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from revaer_core.store import RuntimeStore
from revaer_core.storetypes import Capability

StoreOpener = Callable[[], RuntimeStore]


class ContractBase:
    """Holds the one fixture a backend must provide, and the store built from it."""

    @pytest.fixture
    def store_opener(self) -> StoreOpener:
        """Override: a function opening a RuntimeStore on this test's (initially empty) storage."""
        raise NotImplementedError("a backend's contract test class must define the 'store_opener' fixture")

    @pytest.fixture
    def store(self, store_opener: StoreOpener) -> Iterator[RuntimeStore]:
        opened = store_opener()
        yield opened
        opened.close()

    @staticmethod
    def require(store: RuntimeStore, capability: Capability) -> None:
        """Skip the calling test unless the backend declares ``capability``."""
        if capability not in store.capabilities():
            pytest.skip(f"backend does not declare the {capability.value!r} capability")
