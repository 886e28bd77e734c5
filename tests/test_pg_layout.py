"""The PostgreSQL row layout comes from the tables alone: positions, COPY types and sanitising follow the columns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql as pg

from revaer_core import FileEntry, Progress, Rates, TorrentState, TorrentStatus
from revaer_runtime_pg import rows
from revaer_runtime_pg.layout import Layout
from revaer_runtime_pg.schema import LAYOUT, STATUS_COLUMNS
from revaer_runtime_pg.statements import Statements

#: A status whose every column holds a value no other column holds, so a value in the wrong place shows.
DISTINCT = TorrentStatus(
    id=uuid.UUID(int=7),
    added_at=datetime(2026, 1, 1, tzinfo=UTC),
    last_updated=datetime(2026, 1, 3, tzinfo=UTC),
    name="the name",
    state=TorrentState.SEEDING,
    progress=Progress(downloaded=11, total=12, eta_seconds=13),
    rates=Rates(download_bps=14, upload_bps=15, ratio=1.5),
    files=(FileEntry(index=0, path="a.mkv", size=12, bytes_completed=11),),
    library_path="/library",
    download_dir="/downloads",
    sequential=True,
    completed_at=datetime(2026, 1, 2, tzinfo=UTC),
    info_hash="ab" * 20,
    paused=True,
    labels=("blue", "red"),
    download_limit=16,
    upload_limit=17,
)


def test_a_status_row_holds_each_column_at_the_tables_position_of_it() -> None:
    row = dict(zip(STATUS_COLUMNS, rows.status_row(DISTINCT, []), strict=True))
    assert list(row) == [c.name for c in LAYOUT.torrents.columns if c.name in row]  # table order
    assert row["id"] == DISTINCT.id and row["state"] == "seeding" and row["name"] == "the name"
    assert (row["downloaded"], row["total"], row["eta_seconds"]) == (11, 12, 13)
    assert (row["download_bps"], row["upload_bps"], row["ratio"]) == (14, 15, 1.5)
    assert (row["added_at"].day, row["completed_at"].day, row["last_updated"].day) == (1, 2, 3)
    assert (row["labels"], row["download_limit"], row["upload_limit"]) == (["blue", "red"], 16, 17)
    assert row["files"] == rows.jsonb_binary(
        '[{"index":0,"path":"a.mkv","size":12,"bytes_completed":11,"priority":4,"selected":true}]'
    )


def test_a_status_read_back_from_its_row_is_the_same_status() -> None:
    row = rows.status_row(DISTINCT, [])
    row[STATUS_COLUMNS.index("files")] = DISTINCT.files  # as hydration's loader hands them over
    assert rows.status_from_row(row) == DISTINCT


def test_the_copy_types_are_the_columns_types() -> None:
    statements = Statements.for_schema("any")
    copied = dict(zip(STATUS_COLUMNS, statements.upsert.types, strict=True))
    assert copied["id"] == "uuid" and copied["state"] == "text"  # an enum goes as its label
    assert copied["files"] == "bytea" and copied["labels"] == "text[]"  # JSONB goes in its binary form
    assert copied["added_at"] == "timestamptz" and copied["ratio"] == "float8" and copied["total"] == "int8"
    assert statements.save_sources.types == ("uuid", "bytea", "text", "int2[]", "text", "timestamptz")
    assert statements.save_resume.types == ("uuid", "bytea")


def test_the_staging_tables_are_made_from_the_tables_themselves() -> None:
    statements = Statements.for_schema("some_schema")
    staged: list[tuple[sql.Composed, str]] = [
        (statements.upsert.create, "torrents"),
        (statements.progress.create, "torrents"),
        (statements.save_sources.create, "torrent_sources"),
        (statements.save_resume.create, "torrents"),
    ]
    for made, table in staged:
        create = made.as_string(None)
        assert f'FROM "some_schema"."{table}" WITH NO DATA' in create, create


@attrs.frozen
class Thing:
    id: uuid.UUID
    at: datetime
    count: int
    note: str | None = None
    tags: tuple[str, ...] = ()


THINGS = sa.Table(
    "things",
    sa.MetaData(),
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("note", sa.Text),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("tags", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False),
)


def _layout() -> Layout:
    return Layout.of(THINGS, [c.name for c in THINGS.columns], lambda column: column, field_prefix="thing ")


def test_a_new_column_is_written_at_its_place_with_nothing_else_to_change() -> None:
    thing = Thing(uuid.UUID(int=1), datetime(2026, 1, 1, tzinfo=UTC), 5, note="hello", tags=("a",))
    problems: list[str] = []
    assert _layout().row(thing, problems) == [thing.id, "hello", 5, ["a"], thing.at]
    assert problems == []


def test_a_new_column_is_sanitised_by_its_type() -> None:
    thing = Thing(uuid.UUID(int=1), datetime(2026, 1, 1, tzinfo=UTC), 2**70, note="a\x00b", tags=("x\x00",))
    problems: list[str] = []
    row: list[Any] = _layout().row(thing, problems)
    assert row == [thing.id, "a\ufffdb", 2**63 - 1, ["x\ufffd"], thing.at]
    assert [p.split(" ")[1] for p in problems] == ["note", "count", "tags"]
    assert all(p.startswith("thing ") for p in problems)
