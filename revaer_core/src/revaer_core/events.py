"""Events the engine and FsOps publish, and the envelope the bus wraps them in.

A payload class says what happened; :class:`Event` adds the bus-assigned id
(monotonic, so a reconnecting subscriber can resume after the last id it saw) and
the time it was published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import attrs

from revaer_core.status import FileEntry, TorrentState


def _files(files: Iterable[FileEntry]) -> tuple[FileEntry, ...]:
    return tuple(files)


def _components(components: Iterable[str]) -> frozenset[str]:
    return frozenset(components)


@attrs.frozen
class TorrentAdded:
    kind: ClassVar[str] = "torrent_added"
    torrent_id: UUID
    name: str | None = None
    download_dir: str | None = None
    info_hash: str | None = None  #: hex, lower case (v1 where the torrent has one)


@attrs.frozen
class FilesDiscovered:
    kind: ClassVar[str] = "files_discovered"
    torrent_id: UUID
    files: tuple[FileEntry, ...] = attrs.field(converter=_files)


@attrs.frozen
class ProgressUpdated:
    kind: ClassVar[str] = "progress"
    torrent_id: UUID
    downloaded: int
    total: int
    download_bps: int | None = None  #: when the engine knows; else derived from the last update
    upload_bps: int | None = None
    ratio: float | None = None


@attrs.frozen
class StateChanged:
    kind: ClassVar[str] = "state_changed"
    torrent_id: UUID
    state: TorrentState
    failure: str | None = None  #: the engine's message when ``state`` is ``failed``


@attrs.frozen
class TorrentCompleted:
    kind: ClassVar[str] = "completed"
    torrent_id: UUID
    library_path: str | None = None


@attrs.frozen
class TorrentRemoved:
    kind: ClassVar[str] = "torrent_removed"
    torrent_id: UUID


@attrs.frozen
class FsOpsStarted:
    kind: ClassVar[str] = "fsops_started"
    torrent_id: UUID


@attrs.frozen
class FsOpsProgress:
    kind: ClassVar[str] = "fsops_progress"
    torrent_id: UUID
    step: str


@attrs.frozen
class FsOpsCompleted:
    kind: ClassVar[str] = "fsops_completed"
    torrent_id: UUID
    destination: str | None = None


@attrs.frozen
class FsOpsFailed:
    kind: ClassVar[str] = "fsops_failed"
    torrent_id: UUID
    message: str


@attrs.frozen
class HealthChanged:
    kind: ClassVar[str] = "health_changed"
    degraded: frozenset[str] = attrs.field(converter=_components)  #: components not healthy now


@attrs.frozen
class SelectionReconciled:
    kind: ClassVar[str] = "selection_reconciled"
    torrent_id: UUID
    reason: str


@attrs.frozen
class OperatorAction:
    """An operator acted on a torrent: through the API, the CLI, the watch folder or an import.

    ``action`` is one of ``added``, ``removed``, ``paused``, ``resumed``,
    ``rechecked``, ``reannounced``, ``options_changed``, ``files_changed``,
    ``fsops_retried``; ``changes`` says what was asked for, as text.
    """

    kind: ClassVar[str] = "operator_action"
    torrent_id: UUID
    action: str
    via: str
    changes: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class WatchFileRejected:
    """A file in the watch folder is not a torrent Revaer can add; it was renamed ``NAME.invalid``."""

    kind: ClassVar[str] = "watch_file_rejected"
    path: str
    reason: str


EventPayload = (
    TorrentAdded
    | FilesDiscovered
    | ProgressUpdated
    | StateChanged
    | TorrentCompleted
    | TorrentRemoved
    | FsOpsStarted
    | FsOpsProgress
    | FsOpsCompleted
    | FsOpsFailed
    | HealthChanged
    | SelectionReconciled
    | OperatorAction
    | WatchFileRejected
)

#: Payload classes by their ``kind``, for decoding a stream of events.
PAYLOAD_TYPES: Mapping[str, type[EventPayload]] = {
    cls.kind: cls
    for cls in (
        TorrentAdded,
        FilesDiscovered,
        ProgressUpdated,
        StateChanged,
        TorrentCompleted,
        TorrentRemoved,
        FsOpsStarted,
        FsOpsProgress,
        FsOpsCompleted,
        FsOpsFailed,
        HealthChanged,
        SelectionReconciled,
        OperatorAction,
        WatchFileRejected,
    )
}


@attrs.frozen
class Event:
    """A published payload with its bus-assigned id and publication time."""

    id: int
    at: datetime
    payload: EventPayload
