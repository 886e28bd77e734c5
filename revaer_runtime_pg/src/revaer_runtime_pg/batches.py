"""Batch writes: values to storable rows sent at once (a COPY, or one array), row by row only when the server refuses.

A batch costs a few round trips whatever its size; a row PostgreSQL will not
take (a value or constraint it refuses) costs only itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import sqlalchemy as sa

from revaer_core import TorrentStatus
from revaer_runtime_pg import binary_rows, database
from revaer_runtime_pg.connection import Connected
from revaer_runtime_pg.statements import StagedWrite, UnnestWrite
from revaer_runtime_pg.transactions import writing

log = logging.getLogger(__name__)

_V = TypeVar("_V")
_Row = TypeVar("_Row", bound=Sequence[Any])

#: What the server raises for a row it will not take (a value or constraint it refuses), as opposed to a fault.
REFUSED = (psycopg.DataError, sa.exc.DataError, psycopg.IntegrityError, sa.exc.IntegrityError)


def storable_rows(values: Iterable[_V], make: Callable[[_V, list[str]], _Row]) -> tuple[dict[UUID, _Row], list[UUID]]:
    """Each value's row by torrent id (a row's first column; the last value of an id wins).

    :returns: The rows, and the ids of those stored sanitised, each logged with what was changed.
    """
    batch: dict[UUID, _Row] = {}
    sanitised: list[UUID] = []
    for value in values:
        problems: list[str] = []
        row = make(value, problems)
        batch[row[0]] = row
        if problems:
            _sanitised(row[0], problems)
            sanitised.append(row[0])
    return batch, sanitised


def progress_records(statuses: Iterable[TorrentStatus]) -> list[bytes]:
    """The progress rows of ``statuses`` as binary array elements (the last status of an id wins).

    Each row is bytes as soon as it is made: a batch of them, unlike one of
    tuples, gives the garbage collector nothing to track.
    """
    records: dict[int, bytes] = {}
    problems: list[str] = []
    for status in statuses:
        records[status.id.int] = binary_rows.progress_record(status, problems)
        if problems:
            _sanitised(status.id, problems)
            problems = []
    return list(records.values())


def _sanitised(torrent_id: UUID, problems: list[str]) -> None:
    log.warning("torrent %s: stored sanitised: %s", torrent_id, "; ".join(problems))


def staged(db: Connected, write: StagedWrite, batch: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """COPY ``batch`` into ``write``'s temporary table and apply it, in one transaction.

    Four round trips whatever the batch's size (three once the pooled
    connection has the table): a daemon's fence check, the COPY, the
    statement. Returns the rows the statement returns.
    """
    with writing(db) as connection:
        raw = database.raw(connection)
        info = connection.connection.info
        if not info.get(write.ready):
            raw.execute(write.create)
        with raw.cursor() as cursor:
            with cursor.copy(write.copy) as copy:
                copy.set_types(write.types)  # binary COPY: measured ~2.5x faster to encode than text
                for n, row in enumerate(batch, 1):
                    copy.write_row(row)
                    if n % 1000 == 0:
                        database.WATCHDOG.rearm(raw)  # the deadline is for the server's answers, not our encoding
            database.WATCHDOG.rearm(raw)
            cursor.execute(write.apply)
            returned = cursor.fetchall() if cursor.description is not None else []
    info[write.ready] = True  # only once the transaction that created it committed
    return returned


def unnested(db: Connected, write: UnnestWrite, records: Sequence[bytes]) -> list[UUID]:
    """Apply ``records`` (binary array elements) with ``write``'s one statement, in one transaction.

    A few round trips whatever the batch's size: the transaction's start, a
    daemon's fence check, the statement, the commit (and, on a connection's
    first use, the staging table and its type's OID). Returns the ids of the
    records that matched no row, asked (one more round trip) only when the
    statement touched fewer rows than it was sent.
    """
    with writing(db) as connection:
        raw = database.raw(connection)
        info = connection.connection.info
        row_type = info.get(write.ready)
        if row_type is None:
            raw.execute(write.create)
            found = raw.execute(write.row_type).fetchone()
            assert found is not None, "a SELECT of one value returned no row"
            row_type = found[0]
        rows = {"rows": binary_rows.array(row_type, records)}
        missing: list[UUID] = []
        with raw.cursor() as cursor:
            cursor.execute(write.apply, rows)
            if cursor.rowcount < len(records):
                missing = [row[0] for row in cursor.execute(write.missing, rows).fetchall()]
    info[write.ready] = row_type  # only once the transaction that created the table committed
    return missing


def write_batch(db: Connected, write: StagedWrite, batch: Sequence[Sequence[Any]], what: str) -> list[UUID]:
    """Write ``batch`` at once; should the server refuse it, row by row, so one bad row costs only itself.

    :returns: The torrent ids of the rows refused alone (each logged).
    """
    try:
        staged(db, write, batch)
    except REFUSED as exc:
        log.warning("runtime store: a batch of %d %s was refused (%s); storing them one by one",
                    len(batch), what, database.one_line(getattr(exc, "orig", None) or exc))  # fmt: skip
    else:
        return []
    refused: list[UUID] = []
    for row in batch:
        try:
            staged(db, write, [row])
        except REFUSED as exc:
            log.warning("torrent %s: not stored, PostgreSQL refused it: %s", row[0],
                        database.one_line(getattr(exc, "orig", None) or exc))  # fmt: skip
            refused.append(row[0])
    return refused
