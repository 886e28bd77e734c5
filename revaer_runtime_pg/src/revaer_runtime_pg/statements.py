"""The hand-written SQL of the hot paths, composed once per schema with psycopg's ``sql`` (identifiers quoted).

Upserts, sources and resume data COPY the batch into a per-connection
temporary table and apply it with one statement (``INSERT … ON CONFLICT``,
measured faster than a pipelined ``executemany``; ``UPDATE … FROM``).
Progress goes as one array parameter of one ``UPDATE … FROM unnest(…)``
(see :mod:`revaer_runtime_pg.binary_rows`). Hydration runs one plain
``SELECT``. Every column list, COPY type and staging table comes from the
tables in :mod:`revaer_runtime_pg.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import sqlalchemy as sa
from psycopg import sql

from revaer_runtime_pg.schema import PROGRESS_COLUMNS, SOURCE_COLUMNS, STATUS_COLUMNS, copy_types, tables


def _name(table: sa.Table) -> sql.Identifier:
    return sql.Identifier(table.name) if table.schema is None else sql.Identifier(table.schema, table.name)


def _names(columns: Sequence[str], alias: str | None = None) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) if alias is None else sql.Identifier(alias, c) for c in columns)


@attrs.frozen
class StagedWrite:
    """A batch write in a few round trips whatever its size: COPY into a temporary table, then one statement.

    The table is per connection (``pg_temp``) and emptied at every commit, so
    it is created once per pooled connection; ``ready`` is the key that
    remembers it in the connection's ``info``.
    """

    create: sql.Composed  #: CREATE TEMP TABLE IF NOT EXISTS … ON COMMIT DELETE ROWS AS SELECT … WITH NO DATA
    copy: sql.Composed  #: binary COPY of a batch into it
    types: tuple[str, ...]  #: what psycopg dumps each copied column as
    apply: sql.Composed  #: the one statement that applies the staged rows
    ready: str

    @classmethod
    def of(cls, table: sa.Table, staging: str, columns: Sequence[str], apply: sql.Composed) -> StagedWrite:
        """A staged write of ``table``'s ``columns``: the temporary table ``staging`` is made from ``table`` itself.

        ``CREATE TABLE … AS SELECT … WITH NO DATA`` gives each column the type
        it has in ``table`` (an enum stays that enum), and nothing else: the
        statement that applies the rows meets ``table``'s constraints.
        """
        return cls(
            create=_staging_table(table, staging, columns),
            copy=sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(staging), _names(columns)
            ),
            types=copy_types(table, columns),
            apply=apply,
            ready=f"{staging}_ready",
        )


@attrs.frozen
class UnnestWrite:
    """A batch write in one statement: the rows go as one binary array of a staging table's row type.

    The table (per connection, made from the target table as a
    :class:`StagedWrite`'s is) never holds a row: it gives the rows a
    composite type whose fields have the target's column types. ``ready``
    is the key that remembers, in the connection's ``info``, that type's OID,
    which a binary array names in its header.
    """

    create: sql.Composed  #: CREATE TEMP TABLE IF NOT EXISTS … AS SELECT … WITH NO DATA
    row_type: sql.Composed  #: the OID of its row type
    apply: sql.Composed  #: the one statement, of the array parameter ``rows``
    missing: sql.Composed  #: the ids in ``rows`` that ``apply`` found no row for, asked only when it touched fewer
    ready: str

    @classmethod
    def of(cls, table: sa.Table, staging: str, columns: Sequence[str]) -> UnnestWrite:
        """An update of ``table``'s ``columns`` (the first, ``id``, finds the row) from an array of rows."""
        rows = sql.SQL("unnest(%(rows)b::pg_temp.{}[]) AS s").format(sql.Identifier(staging))
        return cls(
            create=_staging_table(table, staging, columns),
            row_type=sql.SQL("SELECT {}::regtype::oid").format(sql.Literal(f"pg_temp.{staging}")),
            apply=_update_from(_name(table), columns[1:], rows),
            missing=sql.SQL("SELECT s.id FROM {} WHERE NOT EXISTS (SELECT FROM {} AS t WHERE t.id = s.id)").format(
                rows, _name(table)
            ),
            ready=f"{staging}_type",
        )


def _staging_table(table: sa.Table, staging: str, columns: Sequence[str]) -> sql.Composed:
    """The per-connection table ``staging``, with ``table``'s ``columns`` and their types, emptied at every commit."""
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA").format(
        sql.Identifier(staging), _names(columns), _name(table)
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
        columns=_names(columns),
        selected=_names(columns, "i"),
        staging=sql.Identifier(staging),
        join=sql.SQL("") if join is None else sql.SQL(" {}").format(join),
        key=sql.Identifier(key),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updated
        ),
        current=_names(updated, "t"),
        incoming=_names(updated, "excluded"),
    )


def _staged(staging: str) -> sql.Composed:
    return sql.SQL("pg_temp.{} AS s").format(sql.Identifier(staging))


def _update_from(target: sql.Identifier, columns: Sequence[str], source: sql.Composable) -> sql.Composed:
    """``UPDATE`` of ``target``'s rows (alias ``t``) whose ``id`` is in ``source`` (alias ``s``), setting ``columns``.

    It sets ``updated_at`` as well, to what the trigger would: a trigger that
    sees it set does not run, and a 10,000-row progress flush calls no
    PL/pgSQL function.
    """
    return sql.SQL("UPDATE {} AS t SET {}, updated_at = now() FROM {} WHERE t.id = s.id").format(
        target,
        sql.SQL(", ").join(sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns),
        source,
    )


@attrs.frozen
class Statements:
    """The hand-written SQL of the hot paths, composed once per schema (identifiers quoted by psycopg)."""

    upsert: StagedWrite  #: statuses, merged into torrents with one INSERT … ON CONFLICT
    load: sql.Composed  #: every status, for hydration
    #: progress-only changes, applied with one UPDATE … FROM unnest(…); the ids it did not find (usually none)
    #: are looked up only when it updated fewer rows than were sent: returning the 10,000 found ones cost the
    #: writer more Python time than the rest of the flush, and even kept in the server for an anti-join, some 10 %
    progress: UnnestWrite
    save_sources: StagedWrite  #: sources, merged into torrent_sources for the torrents that are stored
    save_resume: StagedWrite  #: resume data, set with one UPDATE … FROM on the torrents that are stored
    load_sources: sql.Composed  #: every source
    load_resume: sql.Composed  #: every torrent's resume data, where it has some

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        t = tables(schema)
        torrents, sources = _name(t.torrents), _name(t.torrent_sources)
        staging, progress, sources_in = "revaer_torrents_in", "revaer_progress_in", "revaer_sources_in"
        resume_in = "revaer_resume_in"
        # KEY SHARE holds each matched torrent until commit, so the foreign key always finds it; a torrent
        # removed meanwhile drops out of the join (READ COMMITTED re-checks locked rows) instead of failing it.
        stored_only = sql.SQL("JOIN {} AS owner ON owner.id = i.torrent_id FOR KEY SHARE OF owner").format(torrents)
        return cls(
            upsert=StagedWrite.of(
                t.torrents, staging, STATUS_COLUMNS, _merge_into(torrents, STATUS_COLUMNS, "id", staging)
            ),
            load=sql.SQL("SELECT {} FROM {}").format(_names(STATUS_COLUMNS), torrents),
            progress=UnnestWrite.of(t.torrents, progress, PROGRESS_COLUMNS),
            save_sources=StagedWrite.of(
                t.torrent_sources,
                sources_in,
                SOURCE_COLUMNS,
                _merge_into(sources, SOURCE_COLUMNS, "torrent_id", sources_in, join=stored_only),
            ),
            save_resume=StagedWrite.of(
                t.torrents,
                resume_in,
                ("id", "resume_data"),
                _update_from(torrents, ("resume_data",), _staged(resume_in)),
            ),
            load_sources=sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{}::text").format(sql.Identifier(c))
                    if isinstance(t.torrent_sources.c[c].type, sa.Enum)
                    else sql.Identifier(c)
                    for c in SOURCE_COLUMNS
                ),
                sources,
            ),
            load_resume=sql.SQL("SELECT id, resume_data FROM {} WHERE resume_data IS NOT NULL").format(torrents),
        )
