"""Torrent status: the value the orchestrator's catalog holds and a TorrentStore persists.

Every class here is frozen: a status changes by ``attrs.evolve``, so a snapshot handed
to a store can never be altered behind its back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

#: Largest byte count a status may carry; stores must round-trip it exactly (BIGINT max).
MAX_BYTES = 2**63 - 1


class TorrentState(enum.StrEnum):
    """Lifecycle state of a torrent, as the engine reports it."""

    QUEUED = "queued"
    FETCHING_METADATA = "fetching_metadata"
    DOWNLOADING = "downloading"
    SEEDING = "seeding"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


def _aware(instance: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, got naive {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class FileEntry:
    """One file inside a torrent, with the user's selection for it."""

    index: int
    path: str  #: relative to the torrent's download dir, "/"-separated
    size: int = attrs.field(validator=_non_negative)
    bytes_completed: int = attrs.field(default=0, validator=_non_negative)
    priority: int = 4  #: libtorrent's 0 (skip) .. 7 (top); 4 is the default
    selected: bool = True


@attrs.frozen
class Progress:
    """Bytes done out of bytes wanted, and the time left at the current rate."""

    downloaded: int = attrs.field(default=0, validator=_non_negative)
    total: int = attrs.field(default=0, validator=_non_negative)
    eta_seconds: int | None = None

    @property
    def fraction(self) -> float:
        """Share done in 0..1; a torrent with an unknown size counts as not started."""
        return self.downloaded / self.total if self.total else 0.0


@attrs.frozen
class Rates:
    """Transfer rates in bytes per second, and the upload/download ratio."""

    download_bps: int = 0
    upload_bps: int = 0
    ratio: float = 0.0


def _file_tuple(files: Iterable[FileEntry] | None) -> tuple[FileEntry, ...] | None:
    return None if files is None else tuple(files)


def _labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Labels as a set in a stable order: sorted, without repeats."""
    return tuple(sorted(set(labels)))


def _limit(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0 or None (no limit), got {value}")


@attrs.frozen
class TorrentStatus:
    """Everything Revaer knows about one torrent.

    ``files`` is ``None`` while metadata is unknown and ``()`` for a torrent known to
    hold no files; stores keep the two apart. The user's choices are part of the
    status (``paused``, ``sequential``, ``labels``, the limits, each file's
    ``priority`` and ``download_dir`` as the save path), so they survive a crash
    and show while the daemon is down. ``failure`` says why a torrent
    failed (required then) or why Revaer stopped it (optional then).
    """

    id: UUID
    added_at: datetime = attrs.field(validator=_aware)
    last_updated: datetime = attrs.field(validator=_aware)
    name: str | None = None
    state: TorrentState = TorrentState.QUEUED
    failure: str | None = attrs.field(default=None)
    progress: Progress = Progress()
    rates: Rates = Rates()
    files: tuple[FileEntry, ...] | None = attrs.field(default=None, converter=_file_tuple)
    library_path: str | None = None
    download_dir: str | None = None
    sequential: bool = False
    completed_at: datetime | None = attrs.field(default=None, validator=_aware)
    # -- what the user chose; re-applied to the engine at every start -------------------
    info_hash: str | None = None  #: hex, lower case: v1 SHA-1 where the torrent has one, else v2 SHA-256
    paused: bool = False  #: paused by the user: stays paused across restarts until resumed
    labels: tuple[str, ...] = attrs.field(default=(), converter=_labels)  #: free-form tags, sorted
    download_limit: int | None = attrs.field(default=None, validator=_limit)  #: bytes/s; ``None``: no limit
    upload_limit: int | None = attrs.field(default=None, validator=_limit)  #: bytes/s; ``None``: no limit

    @failure.validator
    def _failure_matches_state(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if self.state is TorrentState.FAILED and value is None:
            raise ValueError("a failed torrent needs a failure message")
        if value is not None and self.state not in (TorrentState.FAILED, TorrentState.STOPPED):
            raise ValueError(f"only a failed or stopped torrent carries a message, not a {self.state.value} one")
