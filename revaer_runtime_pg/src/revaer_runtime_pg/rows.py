"""Rows to values and back: torrent statuses and sources, FsOps jobs and history entries.

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
from revaer_runtime_pg.sanitize import BIGINT_MAX, BIGINT_MIN

log = logging.getLogger(__name__)

_STATES = {s.value: s for s in TorrentState}
_STATE_LABELS = {s: s.value for s in TorrentState}
_JOB_STATUSES = {s.value: s for s in JobStatus}
_MODES = {m.value: m for m in TransferMode}
_EVENTS = {e.value: e for e in JobEvent}
_ADDED_VIA = {v.value: v for v in AddedVia}

#: One row of ``torrents`` in :data:`revaer_runtime_pg.schema.STATUS_COLUMNS` order, as binary
#: COPY sends it: ``files`` is already in JSONB's binary form (see :func:`jsonb_binary`).
StatusRow = tuple[
    UUID, str | None, str, str | None, int, int, int | None, int, int, float, bytes | None,
    str | None, str | None, bool, datetime, datetime | None, datetime,
    str | None, bool, list[str], int | None, int | None,
]  # fmt: skip


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


def _plain(text: str | None) -> bool:
    """Whether ``text`` is storable as it is, by the cheapest test (ASCII without NUL)."""
    return text is None or (text.isascii() and "\x00" not in text)


def _within_bigint(limit: int | None) -> bool:
    """Whether a rate limit (``None`` or >= 0, as TorrentStatus validates) fits BIGINT."""
    return limit is None or limit <= BIGINT_MAX


def status_row(status: TorrentStatus, problems: list[str]) -> StatusRow:
    """The row that stores ``status``; anything changed to make it storable is added to ``problems``.

    ``labels`` go as a list: psycopg dumps a list, not a tuple, as an array.
    """
    s, p, r = status, status.progress, status.rates
    files = None if s.files is None else _files_json(s.files, problems)
    if (
        _plain(s.name)
        and _plain(s.failure)
        and _plain(s.library_path)
        and _plain(s.download_dir)
        and _plain(s.info_hash)
        and (not s.labels or all(map(_plain, s.labels)))
        and _within_bigint(s.download_limit)
        and _within_bigint(s.upload_limit)
        and BIGINT_MIN <= p.downloaded <= BIGINT_MAX
        and BIGINT_MIN <= p.total <= BIGINT_MAX
        and (p.eta_seconds is None or BIGINT_MIN <= p.eta_seconds <= BIGINT_MAX)
        and BIGINT_MIN <= r.download_bps <= BIGINT_MAX
        and BIGINT_MIN <= r.upload_bps <= BIGINT_MAX
        and 1 < s.added_at.year < 9999
        and 1 < s.last_updated.year < 9999
        and (s.completed_at is None or 1 < s.completed_at.year < 9999)
    ):  # the common case: nothing to sanitise, no call per field
        return (
            s.id, s.name, _STATE_LABELS[s.state], s.failure, p.downloaded, p.total, p.eta_seconds,
            r.download_bps, r.upload_bps, r.ratio, files, s.library_path, s.download_dir, s.sequential,
            s.added_at, s.completed_at, s.last_updated,
            s.info_hash, s.paused, list(s.labels), s.download_limit, s.upload_limit,
        )  # fmt: skip
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
        files,
        sanitize.optional_text(s.library_path, "library_path", problems),
        sanitize.optional_text(s.download_dir, "download_dir", problems),
        s.sequential,
        sanitize.moment(s.added_at, "added_at", problems),
        sanitize.optional_moment(s.completed_at, "completed_at", problems),
        sanitize.moment(s.last_updated, "last_updated", problems),
        sanitize.optional_text(s.info_hash, "info_hash", problems),
        s.paused,
        [sanitize.text(label, "label", problems) for label in s.labels],
        sanitize.optional_bigint(s.download_limit, "download_limit", problems),
        sanitize.optional_bigint(s.upload_limit, "upload_limit", problems),
    )


#: One row of the progress staging table, in :data:`revaer_runtime_pg.schema.PROGRESS_COLUMNS` order.
ProgressRow = tuple[UUID, int, int, int | None, int, int, float, datetime]


def progress_row(status: TorrentStatus, problems: list[str]) -> ProgressRow:
    """The columns ``update_progress`` writes for ``status``, sanitised as :func:`status_row` does."""
    p, r = status.progress, status.rates
    if (
        BIGINT_MIN <= p.downloaded <= BIGINT_MAX
        and BIGINT_MIN <= p.total <= BIGINT_MAX
        and (p.eta_seconds is None or BIGINT_MIN <= p.eta_seconds <= BIGINT_MAX)
        and BIGINT_MIN <= r.download_bps <= BIGINT_MAX
        and BIGINT_MIN <= r.upload_bps <= BIGINT_MAX
        and 1 < status.last_updated.year < 9999
    ):  # the common case: nothing to sanitise, no call per field
        return (
            status.id, p.downloaded, p.total, p.eta_seconds, r.download_bps, r.upload_bps, r.ratio,
            status.last_updated,
        )  # fmt: skip
    return (
        status.id,
        sanitize.bigint(p.downloaded, "downloaded", problems),
        sanitize.bigint(p.total, "total", problems),
        sanitize.optional_bigint(p.eta_seconds, "eta_seconds", problems),
        sanitize.bigint(r.download_bps, "download_bps", problems),
        sanitize.bigint(r.upload_bps, "upload_bps", problems),
        r.ratio,
        sanitize.moment(status.last_updated, "last_updated", problems),
    )


#: One row of ``torrent_sources`` in :data:`revaer_runtime_pg.schema.SOURCE_COLUMNS` order, as binary COPY sends it.
SourceRow = tuple[UUID, bytes | None, str | None, list[int], str, datetime]


def source_row(source: StoredSource, problems: list[str]) -> SourceRow:
    """The row that stores ``source``; what was changed to make it storable is added to ``problems``.

    The magnet link and time are sanitised as a status's texts and times are;
    metainfo goes as it is: BYTEA takes every byte, NULs included.
    """
    return (
        source.torrent_id,
        source.metainfo,
        sanitize.optional_text(source.magnet, "magnet", problems),
        list(source.file_priorities),
        source.added_via.value,
        sanitize.moment(source.added_at, "source added_at", problems),
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
        row[17],  # info_hash
        row[18],  # paused
        row[19],  # labels (a list; the converter sorts it into a tuple)
        row[20],  # download_limit
        row[21],  # upload_limit
    )


def source_from_row(row: Sequence[Any]) -> StoredSource:
    """The source a ``torrent_sources`` row (SOURCE_COLUMNS order) holds.

    A way of adding a newer writer knows is read as ``api`` (and logged)
    rather than losing the source: without it the torrent cannot come back.
    """
    (torrent_id, metainfo, magnet, priorities, via_label, added_at) = row
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


def job_from_row(row: Sequence[Any]) -> FsJob:
    """The job an ``fs_jobs`` row (JOB_COLUMNS order) holds."""
    (torrent_id, status_label, source, attempt, created_at, updated_at, destination, mode, last_error) = row
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
    (torrent_id, seq, event_label, status_label, attempt, at, source, destination, mode, detail) = row
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
