"""What the orchestrator needs from a BitTorrent engine.

An engine is built with a ``publish`` function (the event bus's) and reports
everything that happens to a torrent as events (:mod:`revaer_core.events`):
``TorrentAdded``, ``FilesDiscovered``, ``ProgressUpdated``, ``StateChanged``,
``TorrentCompleted``, ``TorrentRemoved``. The orchestrator never asks an engine
for status; it only folds these events.

Torrent ids are UUIDs derived from the info-hash (:func:`torrent_id_for`), so
the same torrent has the same id in every run and in every engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from revaer_core.events import EventPayload

#: How an engine hands an event to the bus (``EventBus.publish`` fits); the result is ignored.
Publish = Callable[[EventPayload], object]

#: Namespace of the UUIDs derived from info-hashes.
INFO_HASH_NAMESPACE = uuid.UUID("5d0f3a4e-8c1b-4d7a-9f63-2b8e1c0a7d45")


def torrent_id_for(info_hash_hex: str) -> uuid.UUID:
    """The torrent id of an info-hash (v1 SHA-1 or v2 SHA-256, hex, any case)."""
    return uuid.uuid5(INFO_HASH_NAMESPACE, info_hash_hex.lower())


@attrs.frozen
class TorrentSource:
    """Where a torrent comes from: exactly one of a .torrent file, a magnet link or bencoded metainfo."""

    torrent_file: Path | None = None
    magnet: str | None = None
    metainfo: bytes | None = None

    def __attrs_post_init__(self) -> None:
        given = [v for v in (self.torrent_file, self.magnet, self.metainfo) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of torrent_file, magnet or metainfo")


@attrs.frozen
class RestoredTorrent:
    """A torrent the engine brought back at start, from stored resume data."""

    torrent_id: uuid.UUID
    name: str | None


class Engine(Protocol):
    """A BitTorrent engine as the orchestrator drives it. All methods are thread-safe."""

    def start(self) -> Sequence[RestoredTorrent]:
        """Start the session, restore stored torrents, and return what was restored.

        Events for restored torrents (added, files, state) are published as usual.
        """
        ...

    def add(
        self, source: TorrentSource, save_path: Path, *, paused: bool = False, sequential: bool = False
    ) -> uuid.UUID:
        """Add a torrent; returns its id. Adding a torrent already present returns its id."""
        ...

    def remove(self, torrent_id: uuid.UUID, *, with_data: bool = False) -> None:
        """Remove a torrent (and its downloaded files with ``with_data``); unknown ids are ignored."""
        ...

    def pause(self, torrent_id: uuid.UUID) -> None: ...

    def resume(self, torrent_id: uuid.UUID) -> None: ...

    def set_file_priorities(self, torrent_id: uuid.UUID, priorities: Mapping[int, int]) -> None:
        """Set priorities (0 skips a file, 1..7) by file index."""
        ...

    def set_sequential(self, torrent_id: uuid.UUID, sequential: bool) -> None: ...

    def close(self) -> None:
        """Save resume data for every torrent and stop the session."""
        ...
