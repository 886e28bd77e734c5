"""What every CLI command shares: the settings and, opened on first use, the store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from revaer_core.health import StoreRole
from revaer_core.plugins import open_store
from revaer_core.settings import Settings, load_settings
from revaer_core.store import RuntimeStore

if TYPE_CHECKING:
    from revaer_core.cli.client import DaemonClient

#: Set once a daemon this process ran has stopped: nothing is left for the interpreter's teardown to do.
DAEMON_STOPPED = threading.Event()


class CliContext:
    """Loads settings and opens the store lazily, so ``--help`` never touches either.

    Commands that read use the store (they work while the daemon is down);
    commands that change torrents use :attr:`daemon`, the running daemon's API.

    A caller that already holds an opened store (a test, or a command run
    inside the daemon) passes it, and settings too if it likes, as click's
    ``obj``: ``main(argv, obj=CliContext(store=store))``. A store passed in is
    the caller's to close; one opened here is closed when the command ends.
    """

    def __init__(
        self,
        config_path: Path | None = None,
        debug: bool = False,
        *,
        settings: Settings | None = None,
        store: RuntimeStore | None = None,
    ) -> None:
        self.config_path = config_path
        self.debug = debug
        self._settings = settings
        self._store = store
        self._owns_store = store is None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def store(self) -> RuntimeStore:
        """The selected store, opened as a client: it reads alongside a running daemon."""
        if self._store is None:
            self._store = open_store(self.settings.runtime, StoreRole.CLIENT)
        return self._store

    @property
    def daemon(self) -> DaemonClient:
        """The running daemon's API, from ``[api]`` host and port; nothing is contacted until a request."""
        from revaer_core.cli.client import DaemonClient  # here: the daemon itself (revaer run) needs no client

        return DaemonClient.from_settings(self.settings)

    def close(self) -> None:
        if self._store is not None and self._owns_store:
            self._store.close()


#: Decorator handing a command the :class:`CliContext`.
pass_cli = click.make_pass_decorator(CliContext)
