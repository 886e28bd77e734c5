"""Fixtures every contract class shares, and the ways a test reaches a backend."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import pytest

from revaer_core.plugins import implemented_hooks
from revaer_core.store import RuntimeStore, new_plugin_manager
from revaer_core.storetypes import Capability, StoreRole

#: Keys no backend should take: the default of the ``bad_options`` fixture.
UNKNOWN_OPTIONS: Mapping[str, Any] = {"surely_not_a_setting_of_any_backend": True}


class StoreOpener(Protocol):
    """Opens a :class:`RuntimeStore` on this test's storage: empty the first time, the same storage later.

    ``options`` are ``[runtime.<backend>]`` keys laid over the backend's own
    (the suite passes bad ones to see them refused); ``role`` is the role the
    store is opened in (the suite opens a ``CLIENT`` beside a ``DAEMON`` for
    backends that declare ``shared``).
    """

    def __call__(self, *, options: Mapping[str, Any] | None = None, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
        """Open the store."""
        ...


class ContractBase:
    """Holds the fixtures a backend provides, and the store built from them."""

    @pytest.fixture
    def store_opener(self) -> StoreOpener:
        """Override: a :class:`StoreOpener` on this test's (initially empty) storage."""
        raise NotImplementedError("a backend's contract test class must define the 'store_opener' fixture")

    @pytest.fixture
    def bad_options(self) -> Sequence[Mapping[str, Any]]:
        """Override to add yours: option tables ``store_configure`` must refuse with a ``ConfigError``.

        The default holds one unknown key. A backend with options adds an
        ill-typed value for each kind it takes, e.g. ``{"pool_size": "five"}``.
        """
        return [UNKNOWN_OPTIONS]

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

    @staticmethod
    def require_hook(store: RuntimeStore, name: str) -> None:
        """Skip the calling test unless the backend implements the optional hook ``name``."""
        if name not in implemented_hooks(store.plugin):
            pytest.skip(f"backend does not implement the optional hook {name!r}")

    @staticmethod
    def hooks(store: RuntimeStore) -> Any:
        """The backend's own hooks, called by keyword as Revaer calls them, with none of the facade's fallbacks.

        The facade answers for a hook a backend lacks (``update_progress``
        becomes an upsert, a missing ``load_resume_data`` an empty mapping);
        a test of what a backend implements calls it here, on the configured
        plugin object, registered with a plugin manager of its own.
        """
        pm = new_plugin_manager()
        pm.register(store.plugin)
        return pm.hook
