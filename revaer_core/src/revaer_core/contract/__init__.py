"""The runtime-store conformance suite: what every TorrentStore and JobStore must do.

A backend's test module subclasses :class:`StoreContract` and provides one
fixture, ``store_opener``: a function that opens a :class:`RuntimeStore` on
the backend's storage, empty the first time and the same storage on every
later call within one test::

    import pytest
    from revaer_core import RuntimeStore
    from revaer_core.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_opener(self, tmp_path):
            return lambda: RuntimeStore.open(MyStore(), name="mine", data_dir=tmp_path)

Tests of optional abilities run only when the backend declares the matching
:class:`revaer_core.Capability` in ``store_capabilities``. Install with
``pip install revaer-core[testing]``.
"""

from revaer_core.contract.jobs import JobStoreContract
from revaer_core.contract.resume import ResumeDataContract
from revaer_core.contract.sources import SourceStoreContract
from revaer_core.contract.torrents import TorrentStoreContract


class StoreContract(TorrentStoreContract, SourceStoreContract, ResumeDataContract, JobStoreContract):
    """Every test of the suite: subclass it and provide ``store_opener``."""


__all__ = ["JobStoreContract", "ResumeDataContract", "SourceStoreContract", "StoreContract", "TorrentStoreContract"]
