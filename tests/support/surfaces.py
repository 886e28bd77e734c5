"""Fixtures for the CLI and HTTP API tests: stores with known rows, a CLI runner, an in-process API client.

The ``store`` fixture is parametrised over both shipped backends, the memory
store and PostgreSQL (a fresh schema per test, on the server ``pg_url`` finds),
so every surface test runs on each.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import pytest

from revaer_core import (
    RuntimeStore,
    TorrentState,
    TorrentStatus,
    TransferMode,
)
from revaer_core.cli import CliContext, main
from revaer_core.contract import samples
from revaer_core.settings import ApiSettings, Settings
from revaer_core.testing.jobs import job_completed, job_failed, job_skipped, job_started
from revaer_runtime_memory import MemoryStore
from tests.support.stores import SECRET_DSN, FaultyStore

#: Backends the surface tests run against; the PostgreSQL ones carry the ``postgres`` marker.
BACKENDS = ["memory", pytest.param("postgres", marks=pytest.mark.postgres)]

STATES = list(TorrentState)


def torrent(n: int) -> TorrentStatus:
    """Torrent ``n`` of a seeded store: states cycle, names mix case, added times shuffle vs. ids."""
    state = STATES[n % len(STATES)]
    failure = "tracker error" if state is TorrentState.FAILED else None
    return samples.status(
        n,
        name=f"{'Ubuntu' if n % 3 == 0 else 'debian'}-{n:03d}",
        state=state,
        failure=failure,
        added_at=samples.EPOCH + timedelta(seconds=(n * 7) % 23),  # repeats: ties broken by id
        last_updated=samples.EPOCH + timedelta(minutes=n),
    )


def seed_torrents(store: RuntimeStore, count: int) -> list[TorrentStatus]:
    statuses = [torrent(n) for n in range(count)]
    store.upsert_torrents(statuses)
    return statuses


@attrs.frozen
class SeededJobs:
    """Torrent ids of jobs in known states, with a known history each."""

    moved: UUID  #: started, failed, retried, started, completed (two attempts)
    failed: UUID  #: started, failed
    moving: UUID  #: started
    skipped: UUID  #: skipped


def seed_jobs(store: RuntimeStore) -> SeededJobs:
    """Four jobs, created one second apart in field order, with their torrents."""
    ids = [samples.status(100 + i).id for i in range(4)]
    store.upsert_torrents([samples.status(100 + i) for i in range(4)])
    at = samples.EPOCH
    moved, failed, moving, skipped = ids
    job_started(store, moved, "/dl/a", at=at)
    job_failed(store, moved, f"copy failed: {SECRET_DSN} unreachable", at=at + timedelta(milliseconds=1))
    store.retry_job(moved, at=at + timedelta(milliseconds=2))
    job_started(store, moved, "/dl/a", at=at + timedelta(milliseconds=3))
    job_completed(store, moved, "/dl/a", "/lib/a", TransferMode.HARDLINK, at=at + timedelta(milliseconds=4))
    job_started(store, failed, "/dl/b", at=at + timedelta(seconds=1))
    job_failed(store, failed, "disk full", at=at + timedelta(seconds=1, milliseconds=1))
    job_started(store, moving, "/dl/c", at=at + timedelta(seconds=2))
    job_skipped(store, skipped, "/dl/d", "nothing to move", at=at + timedelta(seconds=3))
    return SeededJobs(moved=moved, failed=failed, moving=moving, skipped=skipped)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RuntimeStore]:
    """An empty store of each backend under test."""
    if request.param == "postgres":
        yield request.getfixturevalue("pg_store")  # closed by its own fixture
        return
    opened = RuntimeStore.open(MemoryStore(), name="memory", data_dir=tmp_path)
    yield opened
    opened.close()


@attrs.frozen
class CliResult:
    code: int
    out: str
    err: str


def run_main(capsys: pytest.CaptureFixture[str], argv: list[str], obj: CliContext | None) -> CliResult:
    """:func:`revaer_core.cli.main` on ``argv``, its output captured and pytest's logging given back after."""
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(argv, obj=obj)
    finally:  # main() configures logging onto the captured stderr
        root.handlers[:], root.level = handlers, level
    captured = capsys.readouterr()
    return CliResult(code=code, out=captured.out, err=captured.err)


class CliRunner:
    """Runs ``revaer`` through :func:`revaer_core.cli.main` (error mapping and exit codes included).

    The store is handed in through click's ``obj``, the seam :class:`CliContext` offers.
    """

    def __init__(self, capsys: pytest.CaptureFixture[str], store: RuntimeStore, settings: Settings) -> None:
        self._capsys = capsys
        self.store = store
        self.settings = settings

    def __call__(self, *args: str, settings: Settings | None = None) -> CliResult:
        return run_main(self._capsys, list(args), CliContext(settings=settings or self.settings, store=self.store))


@pytest.fixture
def cli_settings() -> Settings:
    return Settings(api=ApiSettings(host="127.0.0.1", port=0))


@pytest.fixture
def revaer(capsys: pytest.CaptureFixture[str], store: RuntimeStore, cli_settings: Settings) -> CliRunner:
    """``revaer`` over the ``store`` fixture."""
    return CliRunner(capsys, store, cli_settings)


@pytest.fixture
def revaer_faulty(
    capsys: pytest.CaptureFixture[str], faulty: tuple[RuntimeStore, FaultyStore], cli_settings: Settings
) -> tuple[CliRunner, FaultyStore]:
    """``revaer`` over a store whose faults the test switches."""
    return CliRunner(capsys, faulty[0], cli_settings), faulty[1]


def problem(body: Any, status: int) -> None:
    """Assert ``body`` is an RFC 9457 problem with ``status``."""
    assert isinstance(body, dict)
    assert body["status"] == status
    assert body["type"].startswith("urn:revaer:problem:")
    assert body["title"] and body["detail"]


#: The bearer token of the ``api`` fixture's app; its client sends it with every request.
API_TOKEN = "test-token-for-writes"


@pytest.fixture
def api(store: RuntimeStore) -> Iterator[Any]:
    """An HTTP client on the API app over ``store`` (in process, through the ASGI interface), with the token."""
    from litestar.testing import TestClient

    from revaer_core.api.app import create_app

    with TestClient(create_app(store, token=API_TOKEN), base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield client
