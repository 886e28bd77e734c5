"""A real daemon for CLI tests: ``revaer run``'s :class:`Daemon` in process, its API on a free port.

The simulated engine takes the real info-hash and file list of real metainfo,
so what the CLI adds is what libtorrent would add; the memory store is handed
in, so a test reads what the daemon wrote (and the CLI can read it too, after
the daemon stops). The CLI finds the daemon from a settings file, as it would
in use: ``[api] port`` is the port bound, ``[runtime] data_dir`` holds the
token file the daemon made.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from revaer_core import RuntimeStore
from revaer_core.cli import CliContext
from revaer_core.control.controller import Controller
from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import make_payload
from revaer_core.engine.libtorrent import create_metainfo
from revaer_core.events import OperatorAction
from revaer_core.settings import ApiSettings, EngineSettings, FsOpsSettings, RuntimeSettings, Settings, load_settings
from revaer_core.testing.process import write_config
from revaer_core.testing.simulated import SimulatedEngine, SimulatedEngineFactory, SimulationScript
from revaer_runtime_memory import MemoryStore
from tests.support.surfaces import CliResult, run_main


class InProcess:
    """What a test reaches for in a started in-process :class:`Daemon` on the simulated engine."""

    daemon: Daemon

    @property
    def controller(self) -> Controller:
        assert self.daemon.controller is not None
        return self.daemon.controller

    @property
    def engine(self) -> SimulatedEngine:
        assert isinstance(self.daemon.engine, SimulatedEngine)
        return self.daemon.engine


@attrs.define
class LiveDaemon(InProcess):
    """A started daemon, its store, and the settings file that points the CLI at it."""

    daemon: Daemon
    store: RuntimeStore
    config: Path
    root: Path
    stopped: bool = False

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def url(self) -> str:
        url: str = self.daemon.api.url
        return url

    def actions(self) -> list[OperatorAction]:
        """The operator actions the daemon published, oldest first."""
        return [e.payload for e in self.daemon.bus.replay().events if isinstance(e.payload, OperatorAction)]

    def stop(self) -> None:
        """Stop the daemon (once): its API stops answering, its store stays readable."""
        if not self.stopped:
            self.stopped = True
            assert self.daemon.stop().clean


def start_daemon(root: Path, *, steps: int = 1000, fsops: FsOpsSettings | None = None) -> LiveDaemon:
    """A daemon over a fresh memory store, serving its API on a port of the system's choice.

    ``steps`` is how many engine ticks a torrent takes to complete (the default: none completes in a test).
    """
    downloads = root / "downloads"
    settings = Settings(
        runtime=RuntimeSettings(backend="memory", data_dir=root / "data", flush_interval_ms=20),
        engine=EngineSettings(download_dir=downloads, allowed_save_roots=(downloads, root / "elsewhere")),
        api=ApiSettings(host="127.0.0.1", port=0),
        fsops=fsops or FsOpsSettings(),
    )
    store = RuntimeStore.open(MemoryStore(), name="memory", data_dir=root / "data")
    daemon = Daemon(
        settings, engine=SimulatedEngineFactory(SimulationScript(steps=steps, save_path=downloads)), store=store
    )
    daemon.start()
    config = write_config(
        root / "revaer.toml",
        {
            "runtime": {"backend": "memory", "data_dir": str(root / "data")},
            "engine": {"download_dir": str(downloads)},
            "api": {"host": "127.0.0.1", "port": daemon.api.port},
        },
    )
    return LiveDaemon(daemon=daemon, store=store, config=config, root=root)


def torrent_file(root: Path, name: str = "show", *, seed: int = 0) -> Path:
    """A real .torrent of a payload made under ``root``: files 0 to 2 (``DEFAULT_FILES``), then a pad file, 3."""
    payload = make_payload(root / f"payload-{name}", name=name, seed=seed)
    path = root / f"{name}.torrent"
    path.write_bytes(create_metainfo(payload))
    return path


class Cli:
    """``revaer --config FILE ...`` through :func:`revaer_core.cli.main`, output captured.

    ``store`` hands the commands the daemon's store (the seam :class:`CliContext` offers), so a
    command that reads the store sees what the daemon wrote; without it the CLI opens its own.
    """

    def __init__(self, capsys: pytest.CaptureFixture[str], config: Path, store: RuntimeStore | None = None) -> None:
        self._capsys = capsys
        self.config = config
        self.store = store

    def __call__(self, *args: str, config: Path | None = None) -> CliResult:
        path = config or self.config
        obj = None
        if self.store is not None:
            obj = CliContext(config_path=path, settings=load_settings(path), store=self.store)
        return run_main(self._capsys, ["--config", str(path), *args], obj)
