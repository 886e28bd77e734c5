"""The Alembic migrations on a real server: what head creates, what base leaves, and concurrent upgrades."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from revaer_core import Progress, RuntimeStore, TorrentState, TorrentStatus
from revaer_core.contract import samples
from revaer_core.testing.jobs import job_failed, job_started
from revaer_runtime_pg import PostgresStore, migrate
from revaer_runtime_pg.migrate import SchemaState
from revaer_runtime_pg.schema import ENUMS, tables
from revaer_runtime_pg.testing import open_pg_store, pg_options

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_engine: sa.Engine) -> sa.Engine:
    return pg_engine


def _scalar(pg_url: str, query: str, *params: object) -> object:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        row = connection.execute(query, params).fetchone()
        return None if row is None else row[0]


def _objects_in(pg_url: str, schema: str) -> int:
    count = _scalar(
        pg_url,
        """
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s)
             + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = %s)
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s)
        """,
        schema,
        schema,
        schema,
    )
    assert isinstance(count, int)
    return count


def test_empty_to_head_creates_the_schema_the_code_expects(engine: sa.Engine, pg_url: str, pg_schema: str) -> None:
    status = migrate.upgrade(engine, pg_schema)
    assert (status.state, status.revision) == (SchemaState.CURRENT, migrate.head())
    with psycopg.connect(pg_url) as connection:
        for type_name, labels in ENUMS.items():
            found = connection.execute(
                "SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e "
                "JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = %s AND t.typname = %s",
                (pg_schema, type_name),
            ).fetchone()
            assert found is not None and tuple(found[0]) == labels, type_name
    # The tables the store's Core definitions describe are the ones the migrations made, column for column,
    # each as nullable, with the same check constraints.
    inspector = sa.inspect(engine)
    for table in tables(pg_schema).metadata.sorted_tables:
        made = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name, schema=pg_schema)}
        assert made == {c.name: c.nullable for c in table.columns}, table.name
        checks = {c["name"] for c in inspector.get_check_constraints(table.name, schema=pg_schema)}
        assert checks == {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}, table.name
    assert _scalar(pg_url, "SELECT obj_description(%s::regclass, 'pg_class')", f"{pg_schema}.fs_job_history")


def test_trigger_updates_updated_at_and_history_is_append_only(
    engine: sa.Engine, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        status = samples.status(1)
        store.upsert_torrents([status])
        job_started(store, status.id, "/downloads/x")
        query = f'SELECT created_at, updated_at FROM "{pg_schema}".torrents WHERE id = %s'
        with psycopg.connect(pg_url, autocommit=True) as connection:
            before = connection.execute(query, (status.id,)).fetchone()
            time.sleep(0.01)
            store.upsert_torrents([samples.status(1, state=TorrentState.SEEDING)])
            after = connection.execute(query, (status.id,)).fetchone()
            assert before is not None and after is not None
            assert after[0] == before[0] and after[1] > before[1]
            sources = f'SELECT created_at, updated_at FROM "{pg_schema}".torrent_sources WHERE torrent_id = %s'
            store.save_torrent_sources([samples.source(1)])
            first = connection.execute(sources, (status.id,)).fetchone()
            time.sleep(0.01)
            store.save_torrent_sources([samples.source(1, metainfo=None, magnet="magnet:?xt=urn:btih:00")])
            replaced = connection.execute(sources, (status.id,)).fetchone()
            assert first is not None and replaced is not None
            assert replaced[0] == first[0] and replaced[1] > first[1]
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                connection.execute(f'UPDATE "{pg_schema}".fs_job_history SET detail = %s', ("rewritten",))
    finally:
        store.close()


def test_removing_a_torrent_cascades_to_its_job_history_and_source(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        gone, kept = samples.status(1), samples.status(2)
        store.upsert_torrents([gone, kept])
        for status in (gone, kept):
            job_started(store, status.id, "/downloads/x")
            job_failed(store, status.id, "disk full")
        store.save_torrent_sources([samples.source(1), samples.source(2)])
        # Delete with plain SQL: the cascade is the schema's, not the store's doing.
        with psycopg.connect(pg_url, autocommit=True) as connection:
            connection.execute(f'DELETE FROM "{pg_schema}".torrents WHERE id = %s', (gone.id,))
            for table, rows in (("fs_jobs", 1), ("fs_job_history", 2), ("torrent_sources", 1)):
                counts = connection.execute(
                    f'SELECT torrent_id, count(*) FROM "{pg_schema}".{table} GROUP BY torrent_id'
                ).fetchall()
                assert counts == [(kept.id, rows)], table
    finally:
        store.close()


def test_downgrade_to_base_leaves_nothing_of_ours(engine: sa.Engine, pg_url: str, pg_schema: str) -> None:
    migrate.upgrade(engine, pg_schema)
    status = migrate.downgrade(engine, pg_schema, "base")
    assert status.state is SchemaState.EMPTY
    assert _scalar(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", pg_schema) == 0
    # ...and back up again from nothing.
    assert migrate.upgrade(engine, pg_schema).state is SchemaState.CURRENT


def test_downgrade_keeps_a_schema_the_operator_made(engine: sa.Engine, pg_url: str, pg_schema: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{pg_schema}"')
    migrate.upgrade(engine, pg_schema)
    migrate.downgrade(engine, pg_schema, "base")
    assert _scalar(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", pg_schema) == 1
    assert _objects_in(pg_url, pg_schema) == 0


def test_downgrade_keeps_our_schema_when_someone_else_put_things_in_it(
    engine: sa.Engine, pg_url: str, pg_schema: str
) -> None:
    migrate.upgrade(engine, pg_schema)
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f'CREATE TABLE "{pg_schema}".operator_notes (note text)')
    migrate.downgrade(engine, pg_schema, "base")
    assert _objects_in(pg_url, pg_schema) > 0  # their table, and nothing else
    assert _scalar(pg_url, "SELECT to_regclass(%s)", f"{pg_schema}.torrents") is None


def _is_expression_index(kind: str, item: object) -> bool:
    return (
        kind == "index" and isinstance(item, sa.Index) and not all(isinstance(e, sa.Column) for e in item.expressions)
    )


def _model_differences(connection: sa.Connection, schema: str) -> list[Any]:
    """What an Alembic autogenerate would change to make the migrated ``schema`` match ``tables(schema)``.

    Types, server defaults and comments are compared too. Indexes on an
    expression are left to :func:`_index_definitions`: SQLAlchemy reflects an
    index expression without its collation, so Alembic would call
    ``torrents_name_idx`` (``COLLATE "C"``) different from itself.
    """
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_schemas": True,
            "include_name": lambda name, kind, parent: kind != "schema" or name == schema,
            "include_object": lambda item, name, kind, reflected, other: not _is_expression_index(kind, item),
            "version_table_schema": schema,
        },
    )
    return list(compare_metadata(context, tables(schema).metadata))


def _index_definitions(connection: sa.Connection, schema: str) -> dict[str, str]:
    """Every index in ``schema`` but primary keys', as PostgreSQL describes it."""
    found = connection.execute(
        sa.text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND NOT i.indisprimary"
        ),
        {"schema": schema},
    )
    return dict(found.all())  # a Result has keys(), so dict() would take it for a mapping


def test_the_table_definitions_are_what_the_migrations_create(engine: sa.Engine, pg_schema: str) -> None:
    migrate.upgrade(engine, pg_schema)
    with engine.connect() as connection:
        assert _model_differences(connection, pg_schema) == []


def test_every_index_the_table_definitions_declare_is_the_one_the_migrations_create(
    engine: sa.Engine, pg_schema: str
) -> None:
    """Each index, dropped and created again from its definition (in a transaction rolled back), reads the same.

    PostgreSQL's own ``pg_get_indexdef`` compares them, collation and all.
    """
    migrate.upgrade(engine, pg_schema)
    declared = [index for table in tables(pg_schema).metadata.sorted_tables for index in table.indexes]
    with engine.connect() as connection, connection.begin() as transaction:
        migrated = _index_definitions(connection, pg_schema)
        assert {i.name for i in declared} == set(migrated)
        assert any(_is_expression_index("index", index) for index in declared)  # the case Alembic cannot see
        for index in declared:
            connection.execute(sa.schema.DropIndex(index))
            connection.execute(sa.schema.CreateIndex(index))
        recreated = _index_definitions(connection, pg_schema)
        transaction.rollback()
    assert recreated == migrated


def test_the_comparison_sees_a_schema_that_differs(engine: sa.Engine, pg_schema: str) -> None:
    """The check above can fail: a comment and an index the migrations did not make are reported."""
    migrate.upgrade(engine, pg_schema)
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(sa.text(f'COMMENT ON COLUMN "{pg_schema}".torrents.files IS NULL'))
        connection.execute(sa.text(f'DROP INDEX "{pg_schema}".fs_jobs_status_idx'))
        found = {
            diff[0][0] if isinstance(diff, list) else diff[0] for diff in _model_differences(connection, pg_schema)
        }
        transaction.rollback()
    assert found == {"modify_comment", "add_index"}


REVISIONS = ["0001", "0002", "0003", "0004", "0005"]


def test_the_revisions_are_the_ones_tested_here() -> None:
    assert migrate.head() == REVISIONS[-1]
    assert all(migrate.known(revision) for revision in REVISIONS)


def test_the_revisions_read_from_the_scripts_text_are_alembics() -> None:
    """The start-up check reads the scripts' text instead of loading Alembic: it must see what Alembic sees."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config("unused"))
    assert dict(migrate.revisions()) == {s.revision: s.down_revision for s in scripts.walk_revisions()}
    assert [migrate.head()] == list(scripts.get_heads())


def test_a_daemon_start_does_not_load_alembic(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    """Opening a store at head, as every start does, imports no Alembic module (a third of the import time)."""
    script = textwrap.dedent(
        f"""
        import sys
        from revaer_core import RuntimeStore, StoreRole
        from revaer_runtime_pg import PostgresStore
        options = {{"dsn": {pg_url!r}, "schema": {pg_schema!r}}}
        RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir={str(tmp_path)!r},
                          role=StoreRole.DAEMON).close()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
        """
    )
    migrated = RuntimeStore.open(PostgresStore(), name="postgres", options=pg_options(pg_url, pg_schema),
                                 data_dir=tmp_path)  # fmt: skip
    migrated.close()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(REVISIONS)))
def test_each_step_is_reversible(engine: sa.Engine, pg_schema: str, before: str, after: str) -> None:
    migrate.upgrade(engine, pg_schema, before)
    assert migrate.upgrade(engine, pg_schema, after).revision == after
    assert migrate.downgrade(engine, pg_schema, before).revision == before
    assert migrate.upgrade(engine, pg_schema, after).revision == after


def _insert_at_0002(pg_url: str, schema: str, status: TorrentStatus) -> None:
    """A torrent row as revision 0002's store wrote it (no column of the user's choices yet)."""
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(
            f'INSERT INTO "{schema}".torrents (id, name, state, downloaded, total, download_bps, upload_bps, ratio, '
            "sequential, added_at, last_updated, resume_data) VALUES (%s, %s, 'downloading', 0, 10, 0, 0, 0, false, "
            "%s, %s, %s)",
            (status.id, status.name, status.added_at, status.last_updated, b"resume"),
        )


def test_upgrading_to_0003_keeps_rows_and_reads_them_as_nobody_chose_anything(
    engine: sa.Engine, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    old = TorrentStatus(
        id=samples.status(1).id,
        name="stored by 0002",
        state=TorrentState.DOWNLOADING,
        progress=Progress(total=10),
        added_at=samples.EPOCH,
        last_updated=samples.EPOCH,
    )
    migrate.upgrade(engine, pg_schema, "0002")
    _insert_at_0002(pg_url, pg_schema, old)
    migrate.upgrade(engine, pg_schema)
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        (loaded,) = store.load_torrents()
        assert loaded == old
        assert (loaded.info_hash, loaded.paused, loaded.labels, loaded.download_limit) == (None, False, (), None)
        assert store.load_torrent_sources() == {}  # such a torrent comes back from its resume data
        assert store.load_resume_data() == {old.id: b"resume"}
    finally:
        store.close()


def test_downgrading_from_0003_keeps_statuses_and_drops_sources(
    engine: sa.Engine, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        store.upsert_torrents([samples.status(1, labels=("kept?",), paused=True)])
        store.save_torrent_sources([samples.source(1)])
    finally:
        store.close()
    migrate.downgrade(engine, pg_schema, "0002")
    assert _scalar(pg_url, f'SELECT name FROM "{pg_schema}".torrents') == samples.status(1).name
    assert _scalar(pg_url, "SELECT to_regclass(%s)", f"{pg_schema}.torrent_sources") is None
    assert _scalar(pg_url, "SELECT to_regtype(%s)", f"{pg_schema}.added_via") is None
    inspector = sa.inspect(engine)
    assert "labels" not in {c["name"] for c in inspector.get_columns("torrents", schema=pg_schema)}


def test_new_columns_and_the_sources_table_are_described(engine: sa.Engine, pg_schema: str) -> None:
    migrate.upgrade(engine, pg_schema)
    inspector = sa.inspect(engine)
    comments = {c["name"]: c.get("comment") for c in inspector.get_columns("torrents", schema=pg_schema)}
    for column in ("info_hash", "paused", "labels", "download_limit", "upload_limit"):
        assert comments[column], column
    sources = {c["name"]: c.get("comment") for c in inspector.get_columns("torrent_sources", schema=pg_schema)}
    for column in ("metainfo", "magnet", "file_priorities", "added_via", "added_at"):
        assert sources[column], column
    assert inspector.get_table_comment("torrent_sources", schema=pg_schema)["text"]


@pytest.mark.parametrize(
    ("metainfo", "magnet", "priorities"),
    [
        (None, None, "{}"),  # neither
        (b"d4:infoe", "magnet:?xt=urn:btih:00", "{}"),  # both
        (b"d4:infoe", None, "{4,8}"),  # a priority libtorrent does not have
        (b"d4:infoe", None, "{-1}"),
    ],
    ids=["neither metainfo nor magnet", "both", "priority 8", "priority -1"],
)
def test_the_schema_refuses_a_source_that_is_not_one(
    pg_url: str, pg_schema: str, tmp_path: Path, metainfo: bytes | None, magnet: str | None, priorities: str
) -> None:
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    try:
        store.upsert_torrents([samples.status(1)])
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as connection, pytest.raises(psycopg.errors.CheckViolation):
        connection.execute(
            f'INSERT INTO "{pg_schema}".torrent_sources (torrent_id, metainfo, magnet, file_priorities, added_via, '
            "added_at) VALUES (%s, %s, %s, %s::smallint[], 'api', now())",
            (samples.status(1).id, metainfo, magnet, priorities),
        )


@pytest.mark.slow
def test_two_processes_upgrading_at_once_both_succeed(pg_url: str, pg_schema: str) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from revaer_runtime_pg import database, migrate
        engine = database.make_engine(
            {pg_url!r}, application_name="race", pool_size=1, connect_timeout_s=5, statement_timeout_ms=0
        )
        print(migrate.upgrade(engine, {pg_schema!r}).state)
        """
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [racer.communicate(timeout=60) for racer in racers]
    for racer, (out, err) in zip(racers, results, strict=True):
        assert racer.returncode == 0, err
        assert out.strip() == "current"
    assert _scalar(pg_url, f'SELECT count(*) FROM "{pg_schema}".alembic_version') == 1
