"""Rows to values and back: torrent statuses and sources, FsOps jobs and history entries.

Each value's row follows its table's columns (:mod:`revaer_runtime_pg.layout`),
so no position is written here. Writing sanitises (see
:mod:`revaer_runtime_pg.sanitize`); reading tolerates
enum labels this version does not know (a newer writer may have added some)
and logs the row with its torrent id instead of failing the whole read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import attrs

from revaer_core import (
    AddedVia,
    FileEntry,
    FsJob,
    JobEvent,
    JobHistoryEntry,
    JobStatus,
    Progress,
    Rates,
    StoredSource,
    TorrentState,
    TorrentStatus,
    TransferMode,
)
from revaer_runtime_pg import sanitize
from revaer_runtime_pg.layout import Layout, pick
from revaer_runtime_pg.schema import (
    HISTORY_COLUMNS,
    JOB_COLUMNS,
    LAYOUT,
    PROGRESS_COLUMNS,
    SOURCE_COLUMNS,
    STATUS_COLUMNS,
)

log = logging.getLogger(__name__)

_STATES = {s.value: s for s in TorrentState}
_JOB_STATUSES = {s.value: s for s in JobStatus}
_MODES = {m.value: m for m in TransferMode}
_EVENTS = {e.value: e for e in JobEvent}
_ADDED_VIA = {v.value: v for v in AddedVia}

# -- writing --------------------------------------------------------------------------------


#: Files documents by the identity of their file list. Progress changes a status far more
#: often than its files, and the catalog's statuses share one file tuple until the files
#: change, so most upserts find their document here. The entry holds the tuple itself,
#: so its id cannot be reused while the entry lives.
_FILES_JSON: dict[int, tuple[tuple[FileEntry, ...], bytes]] = {}
_FILES_JSON_LIMIT = 200_000

#: JSONB's binary wire format is a version byte, then the JSON text in UTF-8.
JSONB_VERSION = b"\x01"


def jsonb_binary(document: str) -> bytes:
    """``document`` in JSONB's binary form, for binary COPY (sent as raw bytes, parsed by the server)."""
    return JSONB_VERSION + document.encode("utf-8")


def _files_json(files: tuple[FileEntry, ...], problems: list[str]) -> bytes:
    cached = _FILES_JSON.get(id(files))
    if cached is not None and cached[0] is files:
        return cached[1]
    found: list[str] = []
    entries = [
        {
            "index": sanitize.integer(f.index, "file index", found),
            "path": sanitize.text(f.path, "file path", found),
            "size": sanitize.bigint(f.size, "file size", found),
            "bytes_completed": sanitize.bigint(f.bytes_completed, "file bytes_completed", found),
            "priority": sanitize.integer(f.priority, "file priority", found),
            "selected": f.selected,
        }
        for f in files
    ]
    document = jsonb_binary(json.dumps(entries, ensure_ascii=False, separators=(",", ":")))
    if found:
        problems.extend(found)  # a sanitised document is not cached: its problems must be reported each time
    else:
        if len(_FILES_JSON) >= _FILES_JSON_LIMIT:
            _FILES_JSON.clear()
        _FILES_JSON[id(files)] = (files, document)
    return document


def _status_attribute(column: str) -> str:
    """The TorrentStatus attribute a ``torrents`` column holds: its own, or its progress's or rates'."""
    if column in attrs.fields_dict(TorrentStatus):
        return column
    for outer, kind in (("progress", Progress), ("rates", Rates)):
        if column in attrs.fields_dict(kind):
            return f"{outer}.{column}"
    raise LookupError(f"torrents.{column} is no attribute of TorrentStatus, its Progress or its Rates")


def _files_document(files: tuple[FileEntry, ...] | None, problems: list[str]) -> bytes | None:
    return None if files is None else _files_json(files, problems)


#: A status as a ``torrents`` row (:data:`STATUS_COLUMNS` order), as binary COPY sends it.
STATUS = Layout.of(LAYOUT.torrents, STATUS_COLUMNS, _status_attribute, converted={"files": _files_document})
#: The columns ``update_progress`` writes, in :data:`PROGRESS_COLUMNS` order.
PROGRESS = Layout.of(LAYOUT.torrents, PROGRESS_COLUMNS, _status_attribute)
#: A source as a ``torrent_sources`` row: each column is the StoredSource attribute of its name. The
#: metainfo goes as it is: BYTEA takes every byte, NULs included.
SOURCE = Layout.of(LAYOUT.torrent_sources, SOURCE_COLUMNS, lambda column: column, field_prefix="source ")

#: One row as binary COPY sends it, in its layout's column order.
Row = list[Any]


def status_row(status: TorrentStatus, problems: list[str]) -> Row:
    """The row that stores ``status``; anything changed to make it storable is added to ``problems``."""
    return STATUS.row(status, problems)


def progress_row(status: TorrentStatus, problems: list[str]) -> Row:
    """The columns ``update_progress`` writes for ``status``, sanitised as :func:`status_row` does."""
    return PROGRESS.row(status, problems)


def source_row(source: StoredSource, problems: list[str]) -> Row:
    """The row that stores ``source``; what was changed to make it storable is added to ``problems``."""
    return SOURCE.row(source, problems)


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


def _reader(columns: Sequence[str], *names: str) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A getter of the values of columns ``names`` from a row of ``columns``, in the order of ``names``."""
    return pick([columns.index(name) for name in names])


def _columns(*names: str) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    return _reader(STATUS_COLUMNS, *names)


_ID, _ADDED_AT, _LAST_UPDATED, _NAME, _STATE, _FAILURE, _FILE_LIST = (
    STATUS.position[name] for name in ("id", "added_at", "last_updated", "name", "state", "failure", "files")
)
_PROGRESS = _columns(*attrs.fields_dict(Progress))
_RATES = _columns(*attrs.fields_dict(Rates))
_STATUS_FIELDS = [field.name for field in attrs.fields(TorrentStatus)]
#: Every TorrentStatus field after ``files`` is a column of its name, read as it is.
_REST = _columns(*_STATUS_FIELDS[_STATUS_FIELDS.index("files") + 1 :])


def status_from_row(row: Sequence[Any]) -> TorrentStatus:
    """The status a ``torrents`` row (STATUS_COLUMNS order) holds.

    Hydration calls this once per stored torrent, so it builds the objects
    positionally (in attrs field order), each column found at its position
    in the table, and does nothing twice.
    """
    state = _STATES.get(row[_STATE])
    failure = row[_FAILURE]
    if state is None:
        _unknown("state", row[_STATE], row[_ID], "stopped")
        state = TorrentState.STOPPED
        failure = f"stored state {row[_STATE]!r} is unknown to this version of Revaer"
    return TorrentStatus(
        row[_ID],
        row[_ADDED_AT],
        row[_LAST_UPDATED],
        row[_NAME],
        state,
        failure,
        Progress(*_PROGRESS(row)),
        Rates(*_RATES(row)),
        _files(row[_FILE_LIST]),
        *_REST(row),  # the labels come as a list; the converter sorts them into a tuple
    )


_SOURCE = _reader(SOURCE_COLUMNS, "torrent_id", "metainfo", "magnet", "file_priorities", "added_via", "added_at")


def source_from_row(row: Sequence[Any]) -> StoredSource:
    """The source a ``torrent_sources`` row (SOURCE_COLUMNS order) holds.

    A way of adding a newer writer knows is read as ``api`` (and logged)
    rather than losing the source: without it the torrent cannot come back.
    """
    (torrent_id, metainfo, magnet, priorities, via_label, added_at) = _SOURCE(row)
    via = _ADDED_VIA.get(via_label)
    if via is None:
        _unknown("added_via", via_label, torrent_id, AddedVia.API.value)
        via = AddedVia.API
    return StoredSource(
        torrent_id=torrent_id,
        added_at=added_at,
        metainfo=None if metainfo is None else bytes(metainfo),
        magnet=magnet,
        file_priorities=priorities,
        added_via=via,
    )


def _mode(label: str | None, torrent_id: UUID) -> TransferMode | None:
    if label is None:
        return None
    mode = _MODES.get(label)
    if mode is None:
        _unknown("transfer mode", label, torrent_id, "none")
    return mode


def _job_status(label: str, torrent_id: UUID) -> JobStatus | None:
    """The status a stored label names; ``None`` (logged) for one a newer writer added."""
    status = _JOB_STATUSES.get(label)
    if status is None:
        _unknown("job status", label, torrent_id, "failed")
    return status


def job_status_of(label: str) -> JobStatus:
    """The status a stored label names; an unknown one (a newer writer's) is failed, as ``job_from_row`` reads it."""
    return _JOB_STATUSES.get(label, JobStatus.FAILED)


_JOB = _reader(JOB_COLUMNS, "torrent_id", "status", "source", "attempt", "job_created_at", "job_updated_at",
               "destination", "transfer_mode", "last_error")  # fmt: skip
_HISTORY = _reader(HISTORY_COLUMNS, "torrent_id", "seq", "event", "status", "attempt", "at", "source", "destination",
                   "transfer_mode", "detail")  # fmt: skip


def job_from_row(row: Sequence[Any]) -> FsJob:
    """The job an ``fs_jobs`` row (JOB_COLUMNS order) holds."""
    (torrent_id, status_label, source, attempt, created_at, updated_at, destination, mode, last_error) = _JOB(row)
    status = _job_status(status_label, torrent_id)
    if status is None:
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
    (torrent_id, seq, event_label, status_label, attempt, at, source, destination, mode, detail) = _HISTORY(row)
    event = _EVENTS.get(event_label)
    if event is None:
        _unknown("job event", event_label, torrent_id, "nothing (the entry is left out)")
        return None
    status = _job_status(status_label, torrent_id) or JobStatus.FAILED
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
