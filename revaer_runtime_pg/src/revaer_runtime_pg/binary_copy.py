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
from datetime import UTC, datetime, timedelta

from revaer_runtime_pg.rows import ProgressRow

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


def progress_record(row: ProgressRow) -> bytes:
    """One row of the progress staging table (``PROGRESS_COLUMNS`` order), as binary COPY sends it."""
    ident, downloaded, total, eta, down, up, ratio, updated = row
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


def stream(records: list[bytes]) -> bytes:
    """``records`` as one whole binary COPY stream, signature and trailer included."""
    return b"".join((SIGNATURE, *records, TRAILER))
