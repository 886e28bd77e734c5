"""The hand-written SQL of the hot paths, composed once per schema with psycopg's ``sql`` (identifiers quoted).

Upserts, progress updates, sources and resume data COPY the batch into a
per-connection temporary table and apply it with one statement
(``INSERT … ON CONFLICT``, measured faster than a pipelined ``executemany``;
``UPDATE … FROM``); hydration runs one plain ``SELECT``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from psycopg import sql

from revaer_runtime_pg.schema import PROGRESS_COLUMNS, SOURCE_COLUMNS, STATUS_COLUMNS

#: Types psycopg dumps :data:`STATUS_COLUMNS` as, for binary COPY. Binary COPY carries no type per
#: field, so the server reads each with its column's binary format: an enum's is its label, and
#: ``files`` goes as bytes already in JSONB's binary form (``rows.jsonb_binary``).
COPY_TYPES: tuple[str, ...] = (
    "uuid", "text", "text", "text", "int8", "int8", "int8", "int8", "int8", "float8", "bytea",
    "text", "text", "bool", "timestamptz", "timestamptz", "timestamptz",
    "text", "bool", "text[]", "int8", "int8",
)  # fmt: skip
#: Types of :data:`PROGRESS_COLUMNS` for binary COPY.
PROGRESS_TYPES: tuple[str, ...] = ("uuid", "int8", "int8", "int8", "int8", "int8", "float8", "timestamptz")
#: Types of :data:`SOURCE_COLUMNS` for binary COPY: metainfo as raw bytes, ``added_via`` (an enum) as its label.
SOURCE_TYPES: tuple[str, ...] = ("uuid", "bytea", "text", "int2[]", "text", "timestamptz")


@attrs.frozen
class StagedWrite:
    """A batch write in a few round trips whatever its size: COPY into a temporary table, then one statement.

    The table is per connection (``pg_temp``) and emptied at every commit, so
    it is created once per pooled connection; ``ready`` is the key that
    remembers it in the connection's ``info``.
    """

    create: sql.Composed  #: CREATE TEMP TABLE IF NOT EXISTS … ON COMMIT DELETE ROWS
    copy: sql.Composed  #: binary COPY of a batch into it
    types: tuple[str, ...]  #: what psycopg dumps each copied column as
    apply: sql.Composed  #: the one statement that applies the staged rows
    ready: str

    @classmethod
    def like(
        cls, table: sql.Identifier, staging: str, columns: Sequence[str], types: tuple[str, ...], apply: sql.Composed
    ) -> StagedWrite:
        """A staged write whose temporary table ``staging`` has ``table``'s columns (and defaults)."""
        return cls(
            create=sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(staging), table),
            copy=_copy_into(staging, columns),
            types=types,
            apply=apply,
            ready=f"{staging}_ready",
        )


def _copy_into(staging: str, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(staging), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )


def _merge_into(
    target: sql.Identifier, columns: Sequence[str], key: str, staging: str, *, join: sql.Composable | None = None
) -> sql.Composed:
    """``INSERT … SELECT`` of the staged rows (alias ``i``) into ``target`` (alias ``t``), updating on conflict.

    A row equal to the one stored is not rewritten (no dead tuple, no
    ``updated_at`` change). ``join`` follows the staging table in ``FROM``:
    a join there keeps only the rows it matches.
    """
    updated = [c for c in columns if c != key]
    return sql.SQL(
        "INSERT INTO {target} AS t ({columns}) SELECT {selected} FROM pg_temp.{staging} AS i{join} "
        "ON CONFLICT ({key}) DO UPDATE SET {assignments} "
        "WHERE ({current}) IS DISTINCT FROM ({incoming})"
    ).format(
        target=target,
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        selected=sql.SQL(", ").join(sql.Identifier("i", c) for c in columns),
        staging=sql.Identifier(staging),
        join=sql.SQL("") if join is None else sql.SQL(" {}").format(join),
        key=sql.Identifier(key),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updated
        ),
        current=sql.SQL(", ").join(sql.Identifier("t", c) for c in updated),
        incoming=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in updated),
    )


@attrs.frozen
class Statements:
    """The hand-written SQL of the hot paths, composed once per schema (identifiers quoted by psycopg)."""

    upsert: StagedWrite  #: statuses, merged into torrents with one INSERT … ON CONFLICT
    load: sql.Composed  #: every status, for hydration
    #: progress-only changes, applied with one UPDATE … FROM that returns the ids it did not find (usually none:
    #: returning the 10,000 found ones cost the writer more Python time than the rest of the flush)
    progress: StagedWrite
    save_sources: StagedWrite  #: sources, merged into torrent_sources for the torrents that are stored
    save_resume: StagedWrite  #: resume data, set with one UPDATE … FROM on the torrents that are stored
    load_sources: sql.Composed  #: every source

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        torrents = sql.Identifier(schema, "torrents")
        sources = sql.Identifier(schema, "torrent_sources")
        staging, progress, sources_in = "revaer_torrents_in", "revaer_progress_in", "revaer_sources_in"
        resume_in = "revaer_resume_in"
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in STATUS_COLUMNS)
        # KEY SHARE holds each matched torrent until commit, so the foreign key always finds it; a torrent
        # removed meanwhile drops out of the join (READ COMMITTED re-checks locked rows) instead of failing it.
        stored_only = sql.SQL("JOIN {} AS owner ON owner.id = i.torrent_id FOR KEY SHARE OF owner").format(torrents)
        return cls(
            upsert=StagedWrite.like(
                torrents, staging, STATUS_COLUMNS, COPY_TYPES, _merge_into(torrents, STATUS_COLUMNS, "id", staging)
            ),
            load=sql.SQL("SELECT {} FROM {}").format(columns, torrents),
            progress=StagedWrite(
                create=sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (id uuid, downloaded int8, total int8, eta_seconds int8, "
                    "download_bps int8, upload_bps int8, ratio float8, last_updated timestamptz) "
                    "ON COMMIT DELETE ROWS"
                ).format(sql.Identifier(progress)),
                copy=_copy_into(progress, PROGRESS_COLUMNS),
                types=PROGRESS_TYPES,
                apply=sql.SQL(
                    "WITH found AS (UPDATE {} AS t SET {} FROM pg_temp.{} AS s WHERE t.id = s.id RETURNING t.id) "
                    "SELECT s.id FROM pg_temp.{} AS s WHERE NOT EXISTS (SELECT FROM found WHERE found.id = s.id)"
                ).format(
                    torrents,
                    sql.SQL(", ").join(
                        sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in PROGRESS_COLUMNS[1:]
                    ),
                    sql.Identifier(progress),
                    sql.Identifier(progress),
                ),
                ready=f"{progress}_ready",
            ),
            save_sources=StagedWrite.like(
                sources,
                sources_in,
                SOURCE_COLUMNS,
                SOURCE_TYPES,
                _merge_into(sources, SOURCE_COLUMNS, "torrent_id", sources_in, join=stored_only),
            ),
            save_resume=StagedWrite(
                create=sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (id uuid, resume_data bytea) ON COMMIT DELETE ROWS"
                ).format(sql.Identifier(resume_in)),
                copy=_copy_into(resume_in, ("id", "resume_data")),
                types=("uuid", "bytea"),
                apply=sql.SQL(
                    "UPDATE {} AS t SET resume_data = s.resume_data FROM pg_temp.{} AS s WHERE t.id = s.id"
                ).format(torrents, sql.Identifier(resume_in)),
                ready=f"{resume_in}_ready",
            ),
            load_sources=sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{}::text").format(sql.Identifier(c)) if c == "added_via" else sql.Identifier(c)
                    for c in SOURCE_COLUMNS
                ),
                sources,
            ),
        )
