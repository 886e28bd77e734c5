"""Rows to values and back: torrent statuses, FsOps jobs and history entries.

Writing sanitises (see :mod:`revaer_runtime_pg.sanitize`); reading tolerates
enum labels this version does not know (a newer writer may have added some)
and logs the row with its torrent id instead of failing the whole read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from revaer_core import (
    FileEntry,
    FsJob,
    JobEvent,
    JobHistoryEntry,
    JobStatus,
    Progress,
    Rates,
    TorrentState,
    TorrentStatus,
    TransferMode,
)
from revaer_runtime_pg import sanitize

log = logging.getLogger(__name__)

_STATES = {s.value: s for s in TorrentState}
_JOB_STATUSES = {s.value: s for s in JobStatus}
_MODES = {m.value: m for m in TransferMode}
_EVENTS = {e.value: e for e in JobEvent}

#: One row of ``torrents`` in :data:`revaer_runtime_pg.schema.STATUS_COLUMNS` order.
StatusRow = tuple[
    UUID, str | None, str, str | None, int, int, int | None, int, int, float, str | None,
    str | None, str | None, bool, datetime, datetime | None, datetime,
]  # fmt: skip


# -- writing --------------------------------------------------------------------------------


def _files_json(files: Sequence[FileEntry], problems: list[str]) -> str:
    entries = [
        {
            "index": sanitize.integer(f.index, "file index", problems),
            "path": sanitize.text(f.path, "file path", problems),
            "size": sanitize.bigint(f.size, "file size", problems),
            "bytes_completed": sanitize.bigint(f.bytes_completed, "file bytes_completed", problems),
            "priority": sanitize.integer(f.priority, "file priority", problems),
            "selected": f.selected,
        }
        for f in files
    ]
    return json.dumps(entries, ensure_ascii=False, separators=(",", ":"))


def status_row(status: TorrentStatus, problems: list[str]) -> StatusRow:
    """The row that stores ``status``; anything changed to make it storable is added to ``problems``."""
    s, p, r = status, status.progress, status.rates
    return (
        s.id,
        sanitize.optional_text(s.name, "name", problems),
        s.state.value,
        sanitize.optional_text(s.failure, "failure", problems),
        sanitize.bigint(p.downloaded, "downloaded", problems),
        sanitize.bigint(p.total, "total", problems),
        sanitize.optional_bigint(p.eta_seconds, "eta_seconds", problems),
        sanitize.bigint(r.download_bps, "download_bps", problems),
        sanitize.bigint(r.upload_bps, "upload_bps", problems),
        r.ratio,
        None if s.files is None else _files_json(s.files, problems),
        sanitize.optional_text(s.library_path, "library_path", problems),
        sanitize.optional_text(s.download_dir, "download_dir", problems),
        s.sequential,
        s.added_at,
        s.completed_at,
        s.last_updated,
    )


# -- reading --------------------------------------------------------------------------------


def _unknown(kind: str, value: str, torrent_id: UUID, instead: str) -> None:
    log.warning(
        "torrent %s: stored %s %r is unknown to this version (written by a newer Revaer?); read as %s",
        torrent_id,
        kind,
        value,
        instead,
    )


def _file_entry(entry: dict[str, Any]) -> FileEntry:
    return FileEntry(
        entry["index"], entry["path"], entry["size"], entry["bytes_completed"], entry["priority"], entry["selected"]
    )


#: Parses a ``files`` document straight into FileEntry objects: one pass, no intermediate list of dicts.
FILES_DECODER = json.JSONDecoder(object_hook=_file_entry)


def _files(raw: Any) -> tuple[FileEntry, ...] | None:
    """``files`` as read: ``None``, a list already decoded (to entries or dicts), or JSON text."""
    if raw is None or type(raw) is tuple:  # tuple: decoded by the hydration loader already
        return raw
    if isinstance(raw, str | bytes):
        raw = FILES_DECODER.decode(raw if isinstance(raw, str) else raw.decode())
    return tuple([f if type(f) is FileEntry else _file_entry(f) for f in raw])


def status_from_row(row: Sequence[Any]) -> TorrentStatus:
    """The status a ``torrents`` row (STATUS_COLUMNS order) holds.

    Hydration calls this once per stored torrent, so it builds the objects
    positionally (in attrs field order) and does nothing twice.
    """
    (ident, name, state_label, failure, downloaded, total, eta, down, up, ratio, files) = row[:11]
    state = _STATES.get(state_label)
    if state is None:
        _unknown("state", state_label, ident, "stopped")
        state = TorrentState.STOPPED
        failure = f"stored state {state_label!r} is unknown to this version of Revaer"
    return TorrentStatus(
        ident,  # id
        row[14],  # added_at
        row[16],  # last_updated
        name,
        state,
        failure,
        Progress(downloaded, total, eta),
        Rates(down, up, ratio),
        _files(files),
        row[11],  # library_path
        row[12],  # download_dir
        row[13],  # sequential
        row[15],  # completed_at
    )


def _mode(label: str | None, torrent_id: UUID) -> TransferMode | None:
    if label is None:
        return None
    mode = _MODES.get(label)
    if mode is None:
        _unknown("transfer mode", label, torrent_id, "none")
    return mode


def job_from_row(row: Sequence[Any]) -> FsJob:
    """The job an ``fs_jobs`` row (JOB_COLUMNS order) holds."""
    (torrent_id, status_label, source, attempt, created_at, updated_at, destination, mode, last_error) = row
    status = _JOB_STATUSES.get(status_label)
    if status is None:
        _unknown("job status", status_label, torrent_id, "failed")
        status = JobStatus.FAILED
        last_error = f"stored job status {status_label!r} is unknown to this version of Revaer"
    return FsJob(
        torrent_id=torrent_id,
        status=status,
        source=source,
        attempt=attempt,
        created_at=created_at,
        updated_at=updated_at,
        destination=destination,
        transfer_mode=_mode(mode, torrent_id),
        last_error=last_error,
    )


def history_from_row(row: Sequence[Any]) -> JobHistoryEntry | None:
    """The entry an ``fs_job_history`` row (HISTORY_COLUMNS order) holds; ``None`` for an unknown event."""
    (torrent_id, seq, event_label, status_label, attempt, at, source, destination, mode, detail) = row
    event = _EVENTS.get(event_label)
    if event is None:
        _unknown("job event", event_label, torrent_id, "nothing (the entry is left out)")
        return None
    status = _JOB_STATUSES.get(status_label)
    if status is None:
        _unknown("job status", status_label, torrent_id, "failed")
        status = JobStatus.FAILED
    return JobHistoryEntry(
        torrent_id=torrent_id,
        seq=seq,
        event=event,
        status=status,
        attempt=attempt,
        at=at,
        source=source,
        destination=destination,
        transfer_mode=_mode(mode, torrent_id),
        detail=detail,
    )
