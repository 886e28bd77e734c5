"""Engines by name, for ``revaer run --engine <name>`` and the demo.

The libtorrent adapter is imported only when asked for, so the core (and the
simulated engine) work without the optional ``libtorrent`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from revaer_core.engine import Engine, Publish
from revaer_core.errors import PluginError
from revaer_core.settings import EngineSettings
from revaer_core.store import RuntimeStore

if TYPE_CHECKING:
    from revaer_core.testing.simulated import SimulationScript

#: Names :func:`open_engine` accepts.
ENGINES = ("libtorrent", "simulated")


def open_engine(
    name: str,
    publish: Publish,
    store: RuntimeStore,
    settings: EngineSettings | None = None,
    *,
    simulated_tick_s: float = 1.0,
    script: SimulationScript | None = None,
    session_overrides: Mapping[str, Any] | None = None,
    resume_interval_s: float | None = None,
) -> Engine:
    """A new, not yet started engine called ``name``.

    :param simulated_tick_s: how often the simulated engine steps on its own thread.
    :param script: what the simulated engine does (default: nothing of its own, in ``download_dir``).
    :param session_overrides: extra libtorrent settings (a faster tick for loopback transfers, say).
    :param resume_interval_s: how often progress is saved as resume data (a daemon's flush interval):
        libtorrent's torrents with newly verified pieces, the simulated engine's changed torrents.
    :raises PluginError: the libtorrent extra is not installed.
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
        from revaer_core.testing.simulated import SimulatedEngine, SimulationScript

        script = script or SimulationScript(save_path=settings.download_dir)
        return SimulatedEngine(
            publish, store, script, tick_interval_s=simulated_tick_s, resume_interval_s=resume_interval_s
        )
    raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")
