"""How each event changes a torrent's status: pure functions, no I/O, no locks.

Kept apart from the orchestrator so the rules can be read (and tested) on
their own: the orchestrator only applies what :func:`fold` returns.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs

from revaer_core.events import (
    EventPayload,
    FilesDiscovered,
    FsOpsCompleted,
    ProgressUpdated,
    StateChanged,
    TorrentAdded,
    TorrentCompleted,
    TorrentRemoved,
)
from revaer_core.status import MAX_BYTES, FileEntry, Progress, Rates, TorrentState, TorrentStatus

#: Events after which the writer flushes at once instead of waiting for the interval.
LIFECYCLE = (TorrentAdded, StateChanged, TorrentCompleted, TorrentRemoved, FsOpsCompleted)


@attrs.frozen
class Removed:
    """The torrent left the catalog."""

    torrent_id: UUID


Change = TorrentStatus | Removed | None  #: the new status, a removal, or nothing to do


def _new(torrent_id: UUID, at: datetime) -> TorrentStatus:
    return TorrentStatus(id=torrent_id, added_at=at, last_updated=at)


def _progress(current: TorrentStatus, event: ProgressUpdated, at: datetime) -> TorrentStatus:
    """Bytes from the event; rates from the engine when it knows them, else from the last update.

    A part that did not change is the current one, not an equal copy: the
    write-behind buffer keeps the statuses of a flush alive while it runs, and
    every object an event makes meanwhile is one more for the garbage
    collector to go through.
    """
    download_bps = event.download_bps
    if download_bps is None:
        elapsed = (at - current.last_updated).total_seconds()
        gained = event.downloaded - current.progress.downloaded
        download_bps = min(int(gained / elapsed), MAX_BYTES) if elapsed > 0 and gained > 0 else 0
    remaining = max(event.total - event.downloaded, 0)
    eta = (remaining // download_bps if download_bps else None) if remaining else 0
    rates = current.rates
    upload_bps = rates.upload_bps if event.upload_bps is None else event.upload_bps
    ratio = rates.ratio if event.ratio is None else event.ratio
    if download_bps != rates.download_bps or upload_bps != rates.upload_bps or ratio != rates.ratio:
        rates = Rates(download_bps=download_bps, upload_bps=upload_bps, ratio=ratio)
    progress = current.progress
    if event.downloaded != progress.downloaded or event.total != progress.total or eta != progress.eta_seconds:
        progress = Progress(downloaded=event.downloaded, total=event.total, eta_seconds=eta)
    return attrs.evolve(current, progress=progress, rates=rates, last_updated=at)


def _whole(files: tuple[FileEntry, ...] | None) -> tuple[FileEntry, ...] | None:
    """``files`` with every wanted one complete, as they are when the torrent completes."""
    if files is None:
        return None
    return tuple(attrs.evolve(f, bytes_completed=f.size) if f.selected and f.priority else f for f in files)


def fold(current: TorrentStatus | None, payload: EventPayload, at: datetime) -> Change:
    """The change ``payload``, published at ``at``, makes to ``current`` (``None``: not in the catalog).

    Events about a torrent the catalog does not hold yet create it: a missed
    ``TorrentAdded`` must not lose the torrent.
    """
    if isinstance(payload, TorrentRemoved):
        return Removed(payload.torrent_id) if current is not None else None
    if isinstance(payload, TorrentAdded):
        if current is None:
            return attrs.evolve(
                _new(payload.torrent_id, at),
                name=payload.name,
                download_dir=payload.download_dir,
                info_hash=payload.info_hash,
            )
        return attrs.evolve(
            current,
            name=payload.name or current.name,
            download_dir=payload.download_dir or current.download_dir,
            info_hash=payload.info_hash or current.info_hash,
            last_updated=at,
        )
    if not isinstance(payload, FilesDiscovered | ProgressUpdated | StateChanged | TorrentCompleted | FsOpsCompleted):
        return None
    status = current or _new(payload.torrent_id, at)
    match payload:
        case FilesDiscovered(files=files):
            return attrs.evolve(status, files=files, last_updated=at)
        case ProgressUpdated():
            return _progress(status, payload, at)
        case StateChanged(state=state, failure=failure):
            if state is TorrentState.SEEDING and status.state is TorrentState.COMPLETED:
                return None  # a completed torrent seeds; "completed" says more and survives a restart
            failure = (failure or "engine reported a failure") if state is TorrentState.FAILED else None
            return attrs.evolve(status, state=state, failure=failure, last_updated=at)
        case TorrentCompleted(library_path=library_path):
            return attrs.evolve(
                status,
                files=_whole(status.files),
                state=TorrentState.COMPLETED,
                failure=None,
                progress=attrs.evolve(status.progress, downloaded=status.progress.total, eta_seconds=0),
                completed_at=status.completed_at or at,
                library_path=library_path or status.library_path,
                last_updated=at,
            )
        case FsOpsCompleted(destination=destination):
            return attrs.evolve(status, library_path=destination or status.library_path, last_updated=at)


def unchanged(change: TorrentStatus, current: TorrentStatus | None) -> bool:
    """Whether ``change`` says nothing ``current`` does not: the same status but for ``last_updated``.

    Such a change is not applied: it would only rewrite what the store holds
    (an engine repeating at a restore what the store gave it, say).
    """
    return current is not None and attrs.evolve(change, last_updated=current.last_updated) == current


def _is_whole(status: TorrentStatus) -> bool:
    """Whether ``status`` shows every wanted byte done already (or knows no size to show it against)."""
    progress = status.progress
    if not progress.total:
        return True
    if progress.downloaded != progress.total or progress.eta_seconds != 0:
        return False
    return all(f.bytes_completed == f.size for f in status.files or () if f.selected and f.priority)


def restored_status(current: TorrentStatus, state: TorrentState | None, complete: bool, at: datetime) -> TorrentStatus:
    """``current`` as the engine restored it: in ``state`` (when known), and whole when ``complete``.

    The same rules as the events that would say so: a completed torrent stays
    completed when it seeds, and any state but ``failed`` clears the failure.
    """
    keeps_state = (
        state is None
        or (state is TorrentState.SEEDING and current.state is TorrentState.COMPLETED)
        or (state is current.state and (current.failure is None or state is TorrentState.FAILED))
    )
    if keeps_state and (not complete or _is_whole(current)):
        return current  # what a restart restores nearly always: the store had it right
    status = current
    if state is not None and not (state is TorrentState.SEEDING and current.state is TorrentState.COMPLETED):
        failure = current.failure if state is TorrentState.FAILED else None
        status = attrs.evolve(status, state=state, failure=failure)
    if complete and status.progress.total:
        progress = attrs.evolve(status.progress, downloaded=status.progress.total, eta_seconds=0)
        status = attrs.evolve(status, progress=progress, files=_whole(status.files))
    return current if status == current else attrs.evolve(status, last_updated=at)
