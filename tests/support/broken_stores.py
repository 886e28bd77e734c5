"""Four broken versions of the guide's SQLite store, and the honest one, each as a contract test class.

Each variant breaks one rule a store written from the docs could break
without noticing: tests/test_contract_catches_broken_stores.py runs this
module (given by path, pytest collects it although its name is not test_*)
and checks that the conformance suite fails every broken one and passes the
honest one. Not collected by the suite itself.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from revaer_core import RuntimeStore, StoreHealth, StoreRole, TorrentStatus, hookimpl, to_json
from revaer_core.contract import StoreContract
from revaer_core.contract.base import StoreOpener
from tests.support.guide_example import example_module

SQLiteStore: type[Any] = example_module().SQLiteStore


class UpsertErasesJobs(SQLiteStore):  # type: ignore[misc]
    """``INSERT OR REPLACE`` deletes the row first: the cascade takes the torrent's job, history and source."""

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> None:
        assert self._db is not None
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO torrents (id, doc) VALUES (?, ?)",
                [(str(s.id), json.dumps(to_json(s))) for s in statuses],
            )


class NoLocking(SQLiteStore):  # type: ignore[misc]
    """One connection shared by every thread, and nothing to keep their transactions apart."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = contextlib.nullcontext()


class AcceptsUnknownOptions(SQLiteStore):  # type: ignore[misc]
    """Takes whatever the settings table holds: a typo in it goes unnoticed."""

    @hookimpl
    def store_configure(self, options: Mapping[str, Any], data_dir: Path) -> None:
        self._db = sqlite3.connect(data_dir / str(options.get("path", "revaer.sqlite3")), check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(example_module().SCHEMA)


class HealthRaises(SQLiteStore):  # type: ignore[misc]
    """Lets the driver's error out of ``store_health`` (on a closed database, say)."""

    @hookimpl
    def store_health(self) -> StoreHealth:
        (count,) = self._rows("SELECT count(*) FROM torrents")[0]
        return StoreHealth(ok=True, detail="sqlite file", facts={"torrents": str(count)})


#: Each broken store, with the contract test that must catch it.
BROKEN: Mapping[str, tuple[type[Any], str]] = {
    "TestUpsertErasesJobs": (UpsertErasesJobs, "test_status_writes_after_job_transitions_keep_the_job_and_its_history"),
    "TestNoLocking": (NoLocking, "test_writers_of_one_torrent_interleave_as_one_serial_order"),
    "TestAcceptsUnknownOptions": (AcceptsUnknownOptions, "test_unknown_and_ill_typed_options_are_refused"),
    "TestHealthRaises": (HealthRaises, "test_health_is_a_report_and_never_raises_even_after_close"),
}


class SQLiteContract(StoreContract):
    """The suite on one SQLite store class, one file per test."""

    plugin_class: type[Any] = SQLiteStore

    @pytest.fixture
    def store_opener(self, tmp_path: Path) -> StoreOpener:
        def open_store(*, options: Mapping[str, Any] | None = None, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
            plugin = self.plugin_class()
            return RuntimeStore.open(plugin, name="sqlite", options=options, data_dir=tmp_path, role=role)

        return open_store

    @pytest.fixture
    def bad_options(self) -> Sequence[Mapping[str, Any]]:
        return [{"paht": "typo.sqlite3"}, {"path": 42}]


class TestHonest(SQLiteContract):
    plugin_class = SQLiteStore


class TestUpsertErasesJobs(SQLiteContract):
    plugin_class = UpsertErasesJobs


class TestNoLocking(SQLiteContract):
    plugin_class = NoLocking


class TestAcceptsUnknownOptions(SQLiteContract):
    plugin_class = AcceptsUnknownOptions


class TestHealthRaises(SQLiteContract):
    plugin_class = HealthRaises
