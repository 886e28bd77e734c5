"""The common model of an import: a torrent to import with the user's choices, and what is lost or skipped."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path

import attrs

from revaer_core.control.metainfo import TorrentInfo
from revaer_core.control.requests import AddRequest
from revaer_core.errors import InvalidInput


class Client(enum.StrEnum):
    """The clients whose state Revaer imports."""

    QBITTORRENT = "qbittorrent"
    TRANSMISSION = "transmission"


class FolderRefused(InvalidInput):
    """The folder given is missing or not the client's (exit 2): nothing was read from it."""


class Outcome(enum.StrEnum):
    """What became of one torrent of the folder."""

    WOULD_IMPORT = "would_import"  #: ``--dry-run``: it would be imported
    IMPORTED = "imported"
    ALREADY_THERE = "already_there"  #: Revaer has this info hash already: left as it is
    SKIPPED = "skipped"  #: not imported; ``reason`` says why


@attrs.frozen
class Planned:
    """One torrent to import: the checked add, its progress, and what of the client's state Revaer cannot keep.

    ``request`` holds the save path, paused, file priorities, labels, limits
    and the libtorrent resume data that carries the progress.
    """

    file: Path  #: the client's file that names the torrent (a .fastresume or .resume)
    request: AddRequest
    pieces_had: int
    pieces_total: int
    bytes_had: int  #: bytes of the pieces had (of every file, skipped ones too)
    lost: tuple[str, ...] = ()

    @property
    def info(self) -> TorrentInfo:
        return self.request.info

    @property
    def progress(self) -> float:
        """The fraction of pieces the client had verified, 0.0 to 1.0."""
        return self.pieces_had / self.pieces_total if self.pieces_total else 0.0


@attrs.frozen
class Skipped:
    """A file of the folder that was not imported, and why (in words an operator can act on)."""

    file: Path
    reason: str


@attrs.frozen
class ImportPlan:
    """What a folder holds: the torrents to import, in file-name order, and the files skipped."""

    client: Client
    folder: Path
    torrents: tuple[Planned, ...]
    skipped: tuple[Skipped, ...]

    @classmethod
    def of(
        cls, client: Client, folder: Path, entries: Iterable[Planned | Skipped], skipped: Iterable[Skipped] = ()
    ) -> ImportPlan:
        """The plan of a folder's read entries, with the files already ``skipped``; skips in file-name order."""
        torrents: list[Planned] = []
        left = list(skipped)
        for entry in entries:
            if isinstance(entry, Planned):
                torrents.append(entry)
            else:
                left.append(entry)
        left.sort(key=lambda s: s.file.name)
        return cls(client, folder, tuple(torrents), tuple(left))


@attrs.frozen
class Result:
    """What became of one file of the folder: its outcome, the torrent when it named one, and why when skipped."""

    file: Path
    outcome: Outcome
    planned: Planned | None = None
    reason: str | None = None
