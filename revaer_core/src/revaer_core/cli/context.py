"""What every CLI command shares: the settings and, opened on first use, the store."""

from __future__ import annotations

from pathlib import Path

from revaer_core.health import StoreRole
from revaer_core.plugins import open_store
from revaer_core.settings import Settings, load_settings
from revaer_core.store import RuntimeStore


class CliContext:
    """Loads settings and opens the store lazily, so ``--help`` never touches either."""

    def __init__(self, config_path: Path | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._settings: Settings | None = None
        self._store: RuntimeStore | None = None

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

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
