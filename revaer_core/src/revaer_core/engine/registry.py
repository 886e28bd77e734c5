"""Engines by name, for the daemon and the demo, and the factory type a caller hands the daemon instead.

The libtorrent adapter is imported only when asked for, so the core works
without the optional ``libtorrent`` extra. The simulated engine belongs to
the test harness (``revaer_core.testing``): it is found by its module name
when that package can be imported, and the product never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, cast

from revaer_core.engine import Engine, Publish
from revaer_core.errors import PluginError
from revaer_core.settings import EngineSettings
from revaer_core.store import RuntimeStore

#: Names :func:`open_engine` accepts.
ENGINES = ("libtorrent", "simulated")

#: Where the simulated engine lives: the test harness, shipped for the ``testing`` extra.
SIMULATED_MODULE = "revaer_core.testing.simulated"


class EngineFactory(Protocol):
    """Builds a new, not yet started engine; what a caller hands the daemon in place of an engine's name."""

    @property
    def name(self) -> str:
        """What the daemon calls the engine in its log and banner."""
        ...

    def __call__(
        self, publish: Publish, store: RuntimeStore, settings: EngineSettings, resume_interval_s: float | None
    ) -> Engine:
        """The engine; ``resume_interval_s`` is how often it saves changed torrents' resume data (``None``: its own)."""
        ...


def open_engine(
    name: str,
    publish: Publish,
    store: RuntimeStore,
    settings: EngineSettings | None = None,
    *,
    session_overrides: Mapping[str, Any] | None = None,
    resume_interval_s: float | None = None,
) -> Engine:
    """A new, not yet started engine called ``name``.

    :param session_overrides: extra libtorrent settings (a faster tick for loopback transfers, say).
    :param resume_interval_s: how often progress is saved as resume data (a daemon's flush interval):
        libtorrent's torrents with newly verified pieces, the simulated engine's changed torrents.
    :raises PluginError: the libtorrent extra, or for ``simulated`` the test harness, cannot be imported.
    :raises ValueError: ``name`` is not one of :data:`ENGINES`.
    """
    settings = settings or EngineSettings()
    if name == "libtorrent":
        try:
            from revaer_core.engine.libtorrent import LibtorrentEngine
        except ImportError as exc:
            raise PluginError(
                f"the libtorrent engine needs the libtorrent wheel ({exc}); "
                "install it with: pip install 'revaer-core[libtorrent]'"
            ) from None
        if resume_interval_s is None:
            return LibtorrentEngine(publish, store, settings, session_overrides=session_overrides)
        return LibtorrentEngine(
            publish, store, settings, session_overrides=session_overrides, piece_save_interval_s=resume_interval_s
        )
    if name == "simulated":
        try:
            harness = importlib.import_module(SIMULATED_MODULE)
        except ImportError as exc:
            raise PluginError(
                f"the simulated engine is part of Revaer's test harness, {SIMULATED_MODULE}, "
                f"which cannot be imported ({exc}); install it with: pip install 'revaer-core[testing]'"
            ) from None
        factory = cast(EngineFactory, harness.SimulatedEngineFactory())
        return factory(publish, store, settings, resume_interval_s)
    raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")
