"""PostgreSQL's binary COPY format for progress rows: one ``struct`` call a row, no psycopg call a value.

Progress is the store's hottest write (every downloading torrent, every
flush) and all eight of its columns are fixed-width, so a row packs in one C
call into bytes, which the garbage collector does not track. psycopg's
``write_row`` dumped each value through its adapters and, with the batch of
row tuples it was fed, caused most of the collections that made the writer
thread cost about as much as the event path itself.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from revaer_core import TorrentStatus
from revaer_runtime_pg.rows import progress_row

#: What a binary COPY stream starts with: the signature, then no flags and no header extension.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: What ends it: a field count of -1.
TRAILER = struct.pack(">h", -1)

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  #: timestamptz counts microseconds from here
_MICROSECOND = timedelta(microseconds=1)
_FIELDS = 8  #: a progress row's fields (PROGRESS_COLUMNS)
_INT8 = 8  #: the length of an int8, float8 or timestamptz field
_UUID = 16

# Each field is its length (int32) and its bytes; a NULL is the length -1 alone.
_ROW = struct.Struct(">h i16s iq iq iq iq iq id iq")
_ROW_NO_ETA = struct.Struct(">h i16s iq iq i iq iq id iq")  # eta_seconds NULL


def progress_record(status: TorrentStatus, problems: list[str]) -> bytes:
    """The row ``update_progress`` writes for ``status``, as binary COPY sends it, sanitised as ``progress_row`` does.

    ``struct``'s int8 is BIGINT, so a value that does not fit makes ``pack``
    raise, and only then is the row built and sanitised: the common case
    checks nothing twice.
    """
    p, r, updated = status.progress, status.rates, status.last_updated
    if 1 < updated.year < 9999:
        try:
            return _pack(
                status.id, p.downloaded, p.total, p.eta_seconds, r.download_bps, r.upload_bps, r.ratio, updated
            )
        except struct.error:
            pass
    return _pack(*progress_row(status, problems))


def _pack(
    ident: UUID, downloaded: int, total: int, eta: int | None, down: int, up: int, ratio: float, updated: datetime
) -> bytes:
    at = (updated - _PG_EPOCH) // _MICROSECOND  # timestamptz: microseconds since 2000-01-01 UTC
    if eta is None:
        return _ROW_NO_ETA.pack(
            _FIELDS, _UUID, ident.bytes, _INT8, downloaded, _INT8, total, -1,
            _INT8, down, _INT8, up, _INT8, ratio, _INT8, at,
        )  # fmt: skip
    return _ROW.pack(
        _FIELDS, _UUID, ident.bytes, _INT8, downloaded, _INT8, total, _INT8, eta,
        _INT8, down, _INT8, up, _INT8, ratio, _INT8, at,
    )  # fmt: skip


def stream(records: Iterable[bytes]) -> bytes:
    """``records`` as one whole binary COPY stream, signature and trailer included."""
    return b"".join((SIGNATURE, *records, TRAILER))
