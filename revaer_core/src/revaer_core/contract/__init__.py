"""The runtime-store conformance suite: what every TorrentStore and JobStore must do.

A backend's test module subclasses :class:`StoreContract` and provides one
fixture, ``store_opener`` (a :class:`~revaer_core.contract.base.StoreOpener`):
a function that opens a :class:`RuntimeStore` on the backend's storage, empty
the first time and the same storage on every later call within one test,
with ``options`` laid over the backend's own and in the ``role`` asked for::

    import pytest
    from revaer_core import RuntimeStore, StoreRole
    from revaer_core.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_opener(self, tmp_path):
            def open_store(options=None, role=StoreRole.DAEMON):
                return RuntimeStore.open(MyStore(), name="mine", options=options, data_dir=tmp_path, role=role)
            return open_store

        @pytest.fixture
        def bad_options(self):  # optional; the default holds one unknown key
            return [{"no_such_key": 1}, {"path": 42}]

Tests of optional abilities run only when the backend declares the matching
:class:`revaer_core.Capability` in ``store_capabilities``; tests of an
optional hook call the backend's own implementation, where it has one.
Install with ``pip install revaer-core[testing]``.
"""

from revaer_core.contract.jobs import JobStoreContract
from revaer_core.contract.lifecycle import LifecycleContract
from revaer_core.contract.resume import ResumeDataContract
from revaer_core.contract.sources import SourceStoreContract
from revaer_core.contract.torrents import TorrentStoreContract


class StoreContract(LifecycleContract, TorrentStoreContract, SourceStoreContract, ResumeDataContract, JobStoreContract):
    """Every test of the suite: subclass it and provide ``store_opener``."""


__all__ = [
    "JobStoreContract",
    "LifecycleContract",
    "ResumeDataContract",
    "SourceStoreContract",
    "StoreContract",
    "TorrentStoreContract",
]
