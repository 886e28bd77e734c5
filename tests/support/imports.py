"""What an import test checks: the client's view of its torrents before it stopped, against Revaer's engine after.

A client's state is made by :mod:`tests.support.clients`; :class:`Expected`
holds what the client's own API said of each torrent. :func:`check_engine`
waits until the libtorrent engine of a Revaer daemon reports the same
progress, paused state, file priorities and labels, and asserts that it
never entered ``checking_files`` (libtorrent's hash check of the data on disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import attrs

from revaer_core.cli import main
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import FAST_SESSION
from revaer_core.engine import torrent_id_for
from revaer_core.engine.libtorrent import LibtorrentEngine
from revaer_core.health import StoreRole
from revaer_core.plugins import open_store
from revaer_core.settings import Settings
from revaer_core.testing.importing import config_for, settings_for
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import pg_options
from tests.support.clients import free_port


@attrs.frozen
class Expected:
    """One torrent as its client reported it just before it stopped."""

    name: str
    downloaded: int  #: verified bytes of the wanted files
    total: int  #: bytes of the wanted files
    paused: bool
    priorities: tuple[int, ...]  #: libtorrent priorities by file index (0 skips)
    labels: tuple[str, ...]


def migrated(settings: Settings) -> None:
    """The store's schema made, as a first ``revaer run`` leaves it."""
    open_store(settings.runtime, StoreRole.DAEMON).close()


#: A client-state fixture: the folder the client wrote, its download folder, each torrent's :class:`Expected`.
State = tuple[Path, Path, dict[str, Expected]]


def checked_state(folder: Path, downloads: Path, expected: dict[str, Expected]) -> State:
    """A client's state, checked to hold what the import tests need: one paused torrent and one partly done."""
    assert [e.paused for e in expected.values()].count(True) == 1
    assert any(e.downloaded < e.total for e in expected.values()), "no torrent is partly done"
    return folder, downloads, expected


def state_settings(tmp_path: Path, pg_url: str, pg_schema: str, state: State) -> Settings:
    """A daemon on the test's PostgreSQL schema that downloads into the client's download folder."""
    return settings_for(tmp_path, pg_options(pg_url, pg_schema), state[1], free_port())


def import_offline(settings: Settings, tmp_path: Path, client: str, state: State, out: Callable[[], str]) -> str:
    """With no daemon running, import ``state`` twice (:func:`import_twice`), then check the next run restores it.

    :returns: the first import's output.
    """
    folder, _, expected = state
    migrated(settings)
    first = import_twice(config_for(tmp_path / "revaer.toml", settings), settings, client, folder, out)
    check_restored(settings, expected)
    return first


def import_twice(config: Path, settings: Settings, client: str, folder: Path, out: Callable[[], str]) -> str:
    """Import ``folder`` twice; the second must find every torrent there and change nothing. The first's output.

    :param out: what the CLI printed since the last call (pytest's ``capsys.readouterr().out``).
    """
    assert main(["--config", str(config), "import", client, str(folder)]) == 0
    first = out()
    assert "imported 3, already there 0, skipped 0" in first
    store = open_store(settings.runtime, StoreRole.CLIENT)
    try:
        before = sorted(store.load_torrents(), key=lambda s: s.id)
        assert main(["--config", str(config), "import", client, str(folder)]) == 0
        assert "imported 0, already there 3, skipped 0" in out()
        assert sorted(store.load_torrents(), key=lambda s: s.id) == before, "a second import changed the store"
    finally:
        store.close()
    return first


@contextmanager
def running_daemon(settings: Settings, *, serve_api: bool = True) -> Iterator[Daemon]:
    """A started daemon on ``settings`` with a fast libtorrent session; it must stop clean when the block ends."""
    daemon = Daemon(settings, engine="libtorrent", serve_api=serve_api, engine_overrides=FAST_SESSION)
    daemon.start()
    try:
        yield daemon
    finally:
        assert daemon.stop().clean


def check_restored(settings: Settings, expected: Mapping[str, Expected]) -> None:
    """A daemon on ``settings`` restores every expected torrent as :func:`check_engine` says, then stops clean."""
    with running_daemon(settings, serve_api=False) as daemon:
        check_engine(daemon, expected)


def check_engine(daemon: Daemon, expected: Mapping[str, Expected]) -> None:
    """Every expected torrent is in the engine with its progress and choices, and none was hash-checked."""
    engine, orchestrator = daemon.engine, daemon.orchestrator
    assert isinstance(engine, LibtorrentEngine) and orchestrator is not None
    for info_hash, want in expected.items():
        torrent_id = torrent_id_for(info_hash)

        def reported(tid: UUID = torrent_id, w: Expected = want) -> bool:
            status = orchestrator.catalog.get(tid)
            return status is not None and (status.progress.downloaded, status.progress.total) == (w.downloaded, w.total)

        wait_for(reported, f"the engine to report {want.name} at {want.downloaded}/{want.total} bytes", 30)
        status = orchestrator.catalog[torrent_id]
        applied = engine.applied(torrent_id)
        assert applied is not None
        assert "checking_files" not in engine.native_states(torrent_id), f"{want.name} was rechecked"
        assert applied.paused == want.paused, want.name
        assert tuple(applied.file_priorities) == want.priorities, want.name
        assert status.labels == want.labels, want.name
        assert status.paused == want.paused, want.name
