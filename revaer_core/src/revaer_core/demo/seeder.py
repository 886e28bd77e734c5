"""A real BitTorrent download without the internet: a payload, its torrent, and a seeder on 127.0.0.1.

``revaer demo`` and the engine tests use these to exercise the libtorrent
adapter end to end: a second :class:`LibtorrentEngine` seeds a torrent made on
the fly, and the engine under test downloads it from the seeder's endpoint::

    payload = make_payload(tmp / "seed")
    torrent = LoopbackTorrent.of(payload)
    with Seeder(torrent) as seeder:
        torrent_id = engine.add(torrent.source, AddOptions(tmp / "downloads"))
        engine.connect_peer(torrent_id, seeder.endpoint)

Requires the ``libtorrent`` extra.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

import attrs

from revaer_core.engine import AddOptions, TorrentSource
from revaer_core.engine.libtorrent import LibtorrentEngine, create_metainfo
from revaer_core.events import EventPayload, StateChanged
from revaer_core.lifecycle import StartedInWith
from revaer_core.settings import EngineSettings
from revaer_core.status import TorrentState
from revaer_core.store import RuntimeStore

#: libtorrent ticks every 500 ms by default; a 100 ms tick makes a loopback download take ~0.1 s.
FAST_SESSION: Mapping[str, int | str | bool] = {"tick_interval": 100}

#: Files of the default demo payload: a nested layout, so FsOps has a directory to move.
DEFAULT_FILES: Mapping[str, int] = {
    "episode-01.mkv": 384 * 1024,
    "extras/commentary.mp3": 96 * 1024,
    "extras/notes.txt": 2 * 1024,
}


def loopback_settings(download_dir: Path | None = None) -> EngineSettings:
    """Engine settings for a loopback-only session: 127.0.0.1 on a free port, no discovery, quick timers."""
    settings = EngineSettings(
        listen_interfaces="127.0.0.1:0",
        alert_poll_ms=20,
        status_interval_ms=100,
        resume_save_interval_s=0.5,
    )
    return settings if download_dir is None else attrs.evolve(settings, download_dir=download_dir)


def make_payload(
    root: Path, name: str = "revaer-demo", files: Mapping[str, int] | None = None, *, seed: int = 0
) -> Path:
    """Write a payload directory ``root/name`` of pseudo-random files (same ``seed``, same bytes)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    payload = root / name
    for relative, size in (files or DEFAULT_FILES).items():
        path = payload / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return payload


@attrs.frozen
class LoopbackTorrent:
    """A payload on disk and the metainfo that describes it."""

    payload: Path  #: the file or directory the torrent holds
    metainfo: bytes  #: the .torrent contents

    @classmethod
    def of(cls, payload: Path, *, piece_size: int = 16 * 1024) -> LoopbackTorrent:
        return cls(payload=payload, metainfo=create_metainfo(payload, piece_size=piece_size))

    @property
    def source(self) -> TorrentSource:
        return TorrentSource(metainfo=self.metainfo)

    @property
    def size(self) -> int:
        """Bytes of payload."""
        if self.payload.is_file():
            return self.payload.stat().st_size
        return sum(p.stat().st_size for p in self.payload.rglob("*") if p.is_file())

    def write(self, path: Path) -> Path:
        """Save the metainfo as a .torrent file at ``path``."""
        path.write_bytes(self.metainfo)
        return path


class Seeder(StartedInWith):
    """A second libtorrent session on 127.0.0.1 that seeds one torrent from its payload in place.

    A context manager: entering starts the session and waits until the torrent
    is seeding (its files hashed), so a downloader can connect at once.
    """

    def __init__(self, torrent: LoopbackTorrent, *, timeout_s: float = 10.0) -> None:
        self.torrent = torrent
        self._timeout_s = timeout_s
        self._seeding = threading.Event()
        self._failure: str | None = None
        self._torrent_id: UUID | None = None
        self._engine = LibtorrentEngine(
            self._on_event,
            RuntimeStore.none(),
            loopback_settings(),
            session_overrides=FAST_SESSION,
            restore_from_store=False,
        )

    def _on_event(self, payload: EventPayload) -> None:
        if isinstance(payload, StateChanged):
            if payload.state is TorrentState.SEEDING:
                self._seeding.set()
            elif payload.state is TorrentState.FAILED:
                self._failure = payload.failure
                self._seeding.set()

    def start(self) -> tuple[str, int]:
        """Start seeding; returns the endpoint to connect to. Raises TimeoutError if the payload does not check out."""
        self._engine.start()
        self._torrent_id = self._engine.add(self.torrent.source, AddOptions(self.torrent.payload.parent))
        if not self._seeding.wait(self._timeout_s) or self._failure is not None:
            self.close()
            raise TimeoutError(
                f"seeder did not start seeding {self.torrent.payload} within {self._timeout_s} s"
                + (f": {self._failure}" if self._failure else "")
            )
        return self.endpoint

    @property
    def endpoint(self) -> tuple[str, int]:
        return ("127.0.0.1", self._engine.listen_port)

    @property
    def engine(self) -> LibtorrentEngine:
        """The seeding engine, for tests that break it on purpose."""
        return self._engine

    def close(self) -> None:
        self._engine.close()
