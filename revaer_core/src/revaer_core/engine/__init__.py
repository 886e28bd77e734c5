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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from revaer_core.events import EventPayload
from revaer_core.sources import DEFAULT_PRIORITY, StoredSource
from revaer_core.status import TorrentState

if TYPE_CHECKING:
    from revaer_core.status import TorrentStatus
    from revaer_core.store import RuntimeStore

#: How an engine hands an event to the bus (``EventBus.publish`` fits); the result is ignored.
Publish = Callable[[EventPayload], object]

#: Namespace of the UUIDs derived from info-hashes.
INFO_HASH_NAMESPACE = uuid.UUID("5d0f3a4e-8c1b-4d7a-9f63-2b8e1c0a7d45")


def torrent_id_for(info_hash_hex: str) -> uuid.UUID:
    """The torrent id of an info-hash (v1 SHA-1 or v2 SHA-256, hex, any case)."""
    return uuid.uuid5(INFO_HASH_NAMESPACE, info_hash_hex.lower())


@attrs.frozen
class TorrentSource:
    """Where a torrent comes from: exactly one of a .torrent file, a magnet link or bencoded metainfo.

    ``resume_data`` (libtorrent's, with metainfo) carries progress another
    client verified (``revaer import``), so the engine adds without a recheck.
    """

    torrent_file: Path | None = None
    magnet: str | None = None
    metainfo: bytes | None = None
    resume_data: bytes | None = None

    def __attrs_post_init__(self) -> None:
        given = [v for v in (self.torrent_file, self.magnet, self.metainfo) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of torrent_file, magnet or metainfo")
        if self.resume_data is not None and self.metainfo is None:
            raise ValueError("resume_data comes with the metainfo it belongs to")


def _priorities(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


@attrs.frozen
class AddOptions:
    """What the user chose for a torrent, as the engine applies it at an add and at every start."""

    save_path: Path
    paused: bool = False
    sequential: bool = False
    #: priority (0 skips, 1..7) by file index; files past the end keep the default (4)
    file_priorities: tuple[int, ...] = attrs.field(default=(), converter=_priorities)
    download_limit: int | None = None  #: bytes/s; ``None``: no limit
    upload_limit: int | None = None

    @classmethod
    def of(cls, status: TorrentStatus, source: StoredSource | None, default_save_path: Path) -> AddOptions:
        """The choices a stored status carries (a magnet's requested priorities until its files are known)."""
        if status.files is not None:
            dense = [DEFAULT_PRIORITY] * (max((f.index for f in status.files), default=-1) + 1)
            for f in status.files:
                dense[f.index] = f.priority
            priorities: tuple[int, ...] = tuple(dense)
        else:
            priorities = source.file_priorities if source is not None else ()
        return cls(
            save_path=Path(status.download_dir) if status.download_dir else default_save_path,
            paused=status.paused,
            sequential=status.sequential,
            file_priorities=priorities,
            download_limit=status.download_limit,
            upload_limit=status.upload_limit,
        )


@attrs.frozen
class RestoreRequest:
    """A torrent the store holds, for the engine to bring back at start.

    The engine uses the resume data when it has some and can read it (no
    recheck), else the source (checking what is on disk). ``options``, when
    given, override what the resume data says: the store's record of the
    user's choices is newer than the engine's last save.
    """

    torrent_id: uuid.UUID
    resume_data: bytes | None = None
    source: TorrentSource | None = None
    options: AddOptions | None = None


def restore_plan(
    statuses: Iterable[TorrentStatus],
    resume_data: Mapping[uuid.UUID, bytes],
    sources: Mapping[uuid.UUID, StoredSource],
    default_save_path: Path,
) -> list[RestoreRequest]:
    """What the engine should restore: every stored torrent with resume data or a source, oldest first.

    A torrent removed by the user is not in the store, so it is not restored.
    """
    plan: list[RestoreRequest] = []
    for status in sorted(statuses, key=lambda s: (s.added_at, s.id)):
        data, stored = resume_data.get(status.id), sources.get(status.id)
        if data is None and stored is None:
            continue
        source = None
        if stored is not None:
            source = TorrentSource(magnet=stored.magnet, metainfo=stored.metainfo)
        plan.append(
            RestoreRequest(
                torrent_id=status.id,
                resume_data=data,
                source=source,
                options=AddOptions.of(status, stored, default_save_path),
            )
        )
    return plan


def plan_from_store(store: RuntimeStore, default_save_path: Path) -> list[RestoreRequest]:
    """:func:`restore_plan` from what ``store`` holds (an engine started without a plan reads it itself)."""
    if not store.persistent:
        return []
    statuses = store.load_torrents()
    return restore_plan(statuses, store.load_resume_data(), store.load_torrent_sources(), default_save_path)


@attrs.frozen
class RestoredTorrent:
    """A torrent the engine brought back at start, from stored resume data.

    ``state`` and ``complete`` are what the engine knows at once from what it
    restored (no alert waited for): the orchestrator puts them in the catalog
    before the daemon reports running. ``None`` and ``False`` say nothing.
    """

    torrent_id: uuid.UUID
    name: str | None
    state: TorrentState | None = None  #: the state it restores in (stopped, seeding, downloading, ...)
    complete: bool = False  #: every wanted byte is on disk: progress is the whole of the wanted files


class Engine(Protocol):
    """A BitTorrent engine as the orchestrator drives it. All methods are thread-safe."""

    def start(self, plan: Sequence[RestoreRequest] | None = None) -> Sequence[RestoredTorrent]:
        """Start the session, restore the torrents of ``plan``, and return what was restored.

        Without a plan the engine reads one from its store (:func:`plan_from_store`).
        Events for restored torrents (added, files, state) are published as usual.
        """
        ...

    def add(self, source: TorrentSource, options: AddOptions) -> uuid.UUID:
        """Add a torrent with the user's choices; returns its id.

        Adding a torrent already present returns its id and changes nothing.
        """
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

    def set_limits(self, torrent_id: uuid.UUID, download_limit: int | None, upload_limit: int | None) -> None:
        """Rate limits in bytes/s; ``None`` lifts a limit."""
        ...

    def recheck(self, torrent_id: uuid.UUID) -> None:
        """Hash every piece on disk again."""
        ...

    def reannounce(self, torrent_id: uuid.UUID) -> None:
        """Announce to every tracker now."""
        ...

    def relocate(self, torrent_id: uuid.UUID, save_path: Path) -> None:
        """The torrent's files are now under ``save_path`` (moved by FsOps): seed from there, without a recheck."""
        ...

    def has(self, torrent_id: uuid.UUID) -> bool:
        """Whether the torrent is in the engine now."""
        ...

    def close(self, timeout: float = 10.0) -> Sequence[uuid.UUID]:
        """Save the resume data that changed and stop the session, within ``timeout`` seconds.

        Returns the torrents whose resume data could not be saved in time (the
        next start uses their older data).
        """
        ...
