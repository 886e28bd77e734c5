"""The PostgreSQL runtime store: every StoreLifecycle, TorrentStore and JobStore hook.

Hot paths skip SQLAlchemy's statement layer but not its pool: upserts,
progress updates and sources COPY the batch into a per-connection temporary
table and apply it with one statement (``INSERT … ON CONFLICT``, measured
faster than a pipelined ``executemany``; ``UPDATE … FROM``); hydration runs
one query whose row factory builds the statuses directly. Everything else is
SQLAlchemy Core.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import attrs
import click
import psycopg
import psycopg.abc
import psycopg.adapt
import psycopg.rows
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql as pg

from revaer_core import (
    HELD_ELSEWHERE,
    WRITER_LOCK_FACT,
    Capability,
    FsJob,
    JobHistoryEntry,
    JobQuery,
    JobStatus,
    JobTransition,
    Page,
    StoredSource,
    StoreHealth,
    StoreRole,
    StoreUnavailable,
    TorrentQuery,
    TorrentSort,
    TorrentStatus,
    WriterFenced,
    apply_transition,
    history_entry,
    hookimpl,
    page_of,
)
from revaer_runtime_pg import database, migrate, rows, sanitize
from revaer_runtime_pg.daemon_lock import DaemonLock, LockLost
from revaer_runtime_pg.embedded import EmbeddedServer
from revaer_runtime_pg.migrate import SchemaState
from revaer_runtime_pg.options import PgOptions, parse_options
from revaer_runtime_pg.schema import (
    HISTORY_COLUMNS,
    JOB_COLUMNS,
    PROGRESS_COLUMNS,
    SOURCE_COLUMNS,
    STATUS_COLUMNS,
    Tables,
    tables,
)

log = logging.getLogger(__name__)

_V = TypeVar("_V")
_Row = TypeVar("_Row", bound=tuple[Any, ...])

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
_FIRST_INSERT_RETRIES = 3
#: What the server raises for a row it will not take (a value or constraint it refuses), as opposed to a fault.
_REFUSED = (psycopg.DataError, sa.exc.DataError, psycopg.IntegrityError, sa.exc.IntegrityError)


class _LostRace(Exception):
    """Another transaction created the torrent's job first: read it again and apply on top."""


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


@attrs.frozen
class Connected:
    """What store_configure opened: the database, its settings and, for the daemon, the writer lock."""

    options: PgOptions
    dsn: str
    engine: sa.Engine
    tables: Tables
    role: StoreRole
    lock: DaemonLock | None
    embedded: EmbeddedServer | None
    statements: Statements


def open_database(options: PgOptions, data_dir: Path, role: StoreRole) -> Connected:
    """Connect (starting the embedded server when there is no DSN), lock, and check or migrate the schema.

    :raises StoreUnavailable: one line, password masked, when the server cannot be used.
    :raises SchemaNotReady: when the schema is not at head and this role may not migrate it.
    :raises DaemonAlreadyRunning: when another daemon writes to the schema.
    """
    embedded = None
    dsn = options.dsn
    if dsn is None:
        embedded = EmbeddedServer(data_dir)
        dsn = embedded.start()
    engine: sa.Engine | None = None
    lock: DaemonLock | None = None
    try:
        engine = database.make_engine(
            dsn,
            application_name=database.application_name(role.value),
            pool_size=options.pool_size,
            connect_timeout_s=options.connect_timeout_s,
            statement_timeout_ms=options.statement_timeout_ms,
        )
        if role is StoreRole.DAEMON:
            lock = DaemonLock(dsn, options.schema, connect_timeout_s=options.connect_timeout_s)
            lock.acquire()
        with engine.connect() as connection:
            status = migrate.status(connection, options.schema)
        may_migrate = role is StoreRole.DAEMON and (
            status.state is SchemaState.EMPTY or (status.state is SchemaState.BEHIND and options.auto_migrate)
        )
        if may_migrate:
            with database.patience(database.BULK_DEADLINE_S):
                status = migrate.upgrade(engine, options.schema)
            log.info("runtime store: %s", status.describe())
        problem = status.problem()
        if problem is not None:
            raise problem
        if lock is not None:
            lock.claim()  # fences out every write of an earlier holder still on its way
    except BaseException as exc:
        if lock is not None:
            lock.release()
        if engine is not None:
            engine.dispose()
        if embedded is not None:
            embedded.stop()
        if isinstance(exc, psycopg.Error | sa.exc.DBAPIError):
            raise database.unavailable(exc, dsn) from None
        raise
    return Connected(
        options=options,
        dsn=dsn,
        engine=engine,
        tables=tables(options.schema),
        role=role,
        lock=lock,
        embedded=embedded,
        statements=Statements.for_schema(options.schema),
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that hold no cycles.

    Hydrating 100,000 torrents allocates about a million objects; without this
    the collector runs hundreds of times over the growing heap, which costs a
    third of the hydration time (measured), and finds nothing to free.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _raw(connection: sa.Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one, for COPY and row factories."""
    driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    return driver


class _FilesLoader(psycopg.adapt.Loader):
    """Loads the ``files`` JSONB column straight into FileEntry objects (see ``rows.FILES_DECODER``)."""

    def load(self, data: psycopg.abc.Buffer) -> Any:
        return tuple(rows.FILES_DECODER.decode(bytes(data).decode()))


def _row_maker(read: Callable[[Sequence[Any]], _V], what: str) -> psycopg.rows.RowFactory[_V | None]:
    """A psycopg row factory: each row becomes a value by ``read``; a row that cannot is logged and becomes ``None``.

    One unreadable row (written by a newer version, edited by hand) must not
    stop a whole read, least of all hydration.
    """

    def factory(cursor: Any) -> psycopg.rows.RowMaker[_V | None]:
        def make(values: Sequence[Any]) -> _V | None:
            try:
                return read(values)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("torrent %s: stored %s cannot be read, left out: %s", values[0], what, exc)
                return None

        return make

    return factory


_status_maker = _row_maker(rows.status_from_row, "row")
_source_maker = _row_maker(rows.source_from_row, "source")


class PostgresStore:
    """Runtime store on PostgreSQL: the ``postgres`` backend (``revaer.runtime`` entry point)."""

    def __init__(self) -> None:
        self._db: Connected | None = None
        self._close_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    @hookimpl
    def store_configure(self, options: Mapping[str, Any], data_dir: Path, role: StoreRole) -> None:
        self._db = open_database(parse_options(options), data_dir, role)
        log.info("runtime store: PostgreSQL at %s, schema %r", database.where(self._db.dsn), self._db.options.schema)

    @hookimpl
    def runtime_commands(self, options: Mapping[str, Any], data_dir: Path) -> Iterable[click.Command]:
        from revaer_runtime_pg.commands import all_commands  # the CLI modules load only when the CLI asks

        return all_commands(options, data_dir)

    @hookimpl
    def store_capabilities(self) -> Iterable[str]:
        return {Capability.DURABLE, Capability.RESUME_DATA, Capability.SOURCES, Capability.SHARED}

    @hookimpl
    def store_health(self) -> StoreHealth:
        db = self._db
        if db is None:
            return StoreHealth(ok=False, detail="the PostgreSQL runtime store is closed")
        facts = {
            "database": database.where(db.dsn),
            "mode": "embedded" if db.embedded is not None else "external",
            "schema": db.options.schema,
        }
        stalled = database.WATCHDOG.stalled(db.engine)
        if stalled > database.STALL_S:
            detail = f"PostgreSQL at {database.where(db.dsn)} has not answered a call for {stalled:.1f} s"
            return StoreHealth(ok=False, detail=detail, facts=facts)
        try:
            with database.patience(database.STALL_S), db.engine.connect() as connection:
                server = connection.execute(sa.text("SHOW server_version")).scalar_one()
                status = migrate.status(connection, db.options.schema)
        except (psycopg.Error, sa.exc.DBAPIError) as exc:
            return StoreHealth(ok=False, detail=str(database.unavailable(exc, db.dsn)), facts=facts)
        facts["server"] = f"PostgreSQL {server}"
        facts["schema revision"] = f"{status.revision or 'none'} (head {status.head})"
        problem = status.problem()
        if problem is not None:
            return StoreHealth(ok=False, detail=str(problem), facts=facts)
        if db.lock is not None:
            lost = db.lock.check()
            facts[WRITER_LOCK_FACT] = "held" if lost is None else HELD_ELSEWHERE if lost.elsewhere else "lost"
            if lost is not None:
                return StoreHealth(ok=False, detail=lost.reason, facts=facts)
        return StoreHealth(ok=True, detail=f"PostgreSQL {server}, {status.describe()}", facts=facts)

    @hookimpl
    def store_close(self) -> None:
        with self._close_lock:
            db, self._db = self._db, None
        if db is None:
            return
        db.engine.dispose()
        if db.lock is not None:
            db.lock.release()
        if db.embedded is not None:
            db.embedded.stop()

    # -- internals ------------------------------------------------------------------------------

    @property
    def _database(self) -> Connected:
        db = self._db
        if db is None:
            raise StoreUnavailable("the PostgreSQL runtime store is closed (or was never configured)")
        return db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A write transaction; a daemon's first checks, inside it, that it still holds the writer lock.

        A lock that went with its session (a server restart, a terminated
        backend) while nobody else took it is taken back, outside the
        transaction, and the write goes on under the new epoch.

        :raises WriterFenced: another daemon holds the lock (nothing is written).
        """
        db = self._database
        lock = db.lock
        with db.engine.begin() as connection:
            try:
                if lock is not None:
                    lock.verify(_raw(connection))
            except LockLost:
                pass  # ends the transaction, which only read the fence
            else:
                yield connection
                return
        assert lock is not None
        lost = lock.check()
        if lost is not None and lost.elsewhere:
            raise WriterFenced(lost.reason)
        if lost is not None:
            raise StoreUnavailable(lost.reason)
        with db.engine.begin() as connection:
            lock.verify(_raw(connection))
            yield connection

    @contextlib.contextmanager
    def _faults(self) -> Iterator[None]:
        """Connection faults as :class:`StoreUnavailable` (one line, no password); the caller retries."""
        try:
            yield
        except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError) as exc:
            raise database.unavailable(exc, self._database.dsn) from exc

    # -- torrents: writes ---------------------------------------------------------------------

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID] | None:
        batch, sanitised = _storable_rows(statuses, rows.status_row)
        if not batch:
            return None
        with self._faults():
            sanitised.extend(self._write_batch(self._database.statements.upsert, list(batch.values()), "statuses"))
        return sanitised or None

    @hookimpl
    def update_progress(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        batch, _ = _storable_rows(statuses, rows.progress_row)
        if not batch:
            return []
        with self._faults():
            return [row[0] for row in self._staged(self._database.statements.progress, batch.values())]

    @hookimpl
    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        batch, _ = _storable_rows(sources, rows.source_row)
        if batch:
            with self._faults():
                self._write_batch(self._database.statements.save_sources, list(batch.values()), "sources")

    def _staged(self, write: StagedWrite, batch: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """COPY ``batch`` into ``write``'s temporary table and apply it, in one transaction.

        Four round trips whatever the batch's size (three once the pooled
        connection has the table): a daemon's fence check, the COPY, the
        statement. Returns the rows the statement returns.
        """
        with self._writing() as connection:
            raw = _raw(connection)
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

    def _write_batch(self, write: StagedWrite, batch: Sequence[tuple[Any, ...]], what: str) -> list[UUID]:
        """Write ``batch`` at once; should the server refuse it, row by row, so one bad row costs only itself.

        :returns: The torrent ids of the rows refused alone (each logged).
        """
        try:
            self._staged(write, batch)
        except _REFUSED as exc:
            log.warning("runtime store: a batch of %d %s was refused (%s); storing them one by one",
                        len(batch), what, database.one_line(getattr(exc, "orig", None) or exc))  # fmt: skip
        else:
            return []
        refused: list[UUID] = []
        for row in batch:
            try:
                self._staged(write, [row])
            except _REFUSED as exc:
                log.warning("torrent %s: not stored, PostgreSQL refused it: %s", row[0],
                            database.one_line(getattr(exc, "orig", None) or exc))  # fmt: skip
                refused.append(row[0])
        return refused

    @hookimpl
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        t = self._database.tables.torrents
        with self._faults(), self._writing() as connection:
            connection.execute(t.delete().where(t.c.id == sa.any_(sa.literal(list(torrent_ids), pg.ARRAY(sa.Uuid)))))

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        t = self._database.tables.torrents
        with self._faults(), self._writing() as connection:
            connection.execute(t.update().where(t.c.id == torrent_id).values(resume_data=bytes(data)))

    @hookimpl
    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """One COPY and one UPDATE for the whole batch; data of torrents not stored matches no row."""
        latest = {torrent_id: bytes(data) for torrent_id, data in items}
        if latest:
            with self._faults():
                self._staged(self._database.statements.save_resume, latest.items())

    # -- torrents: reads ----------------------------------------------------------------------

    @hookimpl
    def load_torrents(self) -> Iterable[TorrentStatus]:
        db = self._database
        # Text format: measured faster than binary for these rows (UUIDs and JSONB dominate).
        with (
            self._faults(),
            database.patience(database.BULK_DEADLINE_S),
            db.engine.connect() as connection,
            _raw(connection).cursor(row_factory=_status_maker) as cursor,
        ):
            cursor.adapters.register_loader("jsonb", _FilesLoader)
            cursor.execute(db.statements.load)
            with _collector_paused():
                loaded = cursor.fetchall()
        return [status for status in loaded if status is not None]

    def _status_columns(self) -> list[sa.ColumnElement[Any]]:
        return _readable(self._database.tables.torrents, STATUS_COLUMNS)

    @hookimpl
    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        t = self._database.tables.torrents
        query = sa.select(*self._status_columns()).where(t.c.id == torrent_id)
        with self._faults(), self._database.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else rows.status_from_row(row)

    @hookimpl
    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        t = self._database.tables.torrents
        key: sa.ColumnElement[Any]
        match query.sort:
            case TorrentSort.ADDED:
                key = t.c.added_at
            case TorrentSort.UPDATED:
                key = t.c.last_updated
            case TorrentSort.NAME:  # unnamed first, by code point: what TorrentQuery.key does in Python
                key = sa.func.coalesce(t.c.name, sa.literal_column("''")).collate("C")
        select = sa.select(*self._status_columns())
        if query.states:
            select = select.where(t.c.state.in_(sorted(s.value for s in query.states)))
        if query.name_contains:
            select = select.where(t.c.name.icontains(query.name_contains, autoescape=True))
        after = query.after_key()
        if after is not None:
            position = sa.tuple_(key, t.c.id)
            cursor = sa.tuple_(sa.literal(after[0]), sa.literal(after[1], sa.Uuid))
            select = select.where(position < cursor if query.descending else position > cursor)
        order = [key.desc(), t.c.id.desc()] if query.descending else [key.asc(), t.c.id.asc()]
        select = select.order_by(*order).limit(query.limit + 1)
        with self._faults(), self._database.engine.connect() as connection:
            found = [rows.status_from_row(row) for row in connection.execute(select)]
        return page_of(found, query.limit, query.cursor_of)

    @hookimpl
    def load_resume_data(self) -> Mapping[UUID, bytes]:
        t = self._database.tables.torrents
        query = sa.select(t.c.id, t.c.resume_data).where(t.c.resume_data.is_not(None))
        with (
            self._faults(),
            database.patience(database.BULK_DEADLINE_S),
            self._database.engine.connect() as connection,
        ):
            return {ident: bytes(data) for ident, data in connection.execute(query)}

    @hookimpl
    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        db = self._database
        # Binary format: metainfo comes as its bytes, not as hex text of twice their size.
        with (
            self._faults(),
            database.patience(database.BULK_DEADLINE_S),
            db.engine.connect() as connection,
            _raw(connection).cursor(row_factory=_source_maker, binary=True) as cursor,
        ):
            cursor.execute(db.statements.load_sources)
            loaded = cursor.fetchall()
        return {source.torrent_id: source for source in loaded if source is not None}

    # -- jobs ---------------------------------------------------------------------------------

    @hookimpl
    def record_job_transition(self, transition: JobTransition) -> FsJob:
        transition = _storable(transition)
        for _ in range(_FIRST_INSERT_RETRIES):
            with self._faults():
                try:
                    return self._record(transition)
                except _LostRace:
                    continue
                except (sa.exc.IntegrityError, psycopg.IntegrityError) as exc:
                    orig = getattr(exc, "orig", None) or exc
                    if isinstance(orig, psycopg.errors.ForeignKeyViolation):
                        raise StoreUnavailable(
                            f"torrent {transition.torrent_id} is not stored (yet): its FsOps job is recorded once "
                            "its status is"
                        ) from None
                    raise
        raise StoreUnavailable(f"torrent {transition.torrent_id}: job kept changing under a first start; retry")

    def _record(self, transition: JobTransition) -> FsJob:
        """One transaction: lock the job row, apply the transition, write the job and its history row."""
        tables = self._database.tables
        j, h = tables.fs_jobs, tables.fs_job_history
        lookup = (
            sa.select(*_readable(j, JOB_COLUMNS), j.c.transitions)
            .where(j.c.torrent_id == transition.torrent_id)
            .with_for_update()
        )
        with self._writing() as connection:
            row = connection.execute(lookup).first()
            current = None if row is None else rows.job_from_row(row[: len(JOB_COLUMNS)])
            job = apply_transition(current, transition)  # TransitionRefused rolls back: nothing recorded
            seq = (0 if row is None else row.transitions) + 1
            values = {
                "status": job.status.value,
                "source": job.source,
                "attempt": job.attempt,
                "job_created_at": job.created_at,
                "job_updated_at": job.updated_at,
                "destination": job.destination,
                "transfer_mode": None if job.transfer_mode is None else job.transfer_mode.value,
                "last_error": job.last_error,
                "transitions": seq,
            }
            if row is None:
                insert = (
                    pg.insert(j)
                    .values(torrent_id=job.torrent_id, **values)
                    .on_conflict_do_nothing(index_elements=[j.c.torrent_id])
                    .returning(j.c.torrent_id)  # rowcount is -1 here (SQLAlchemy 2.1): a returned row says it was ours
                )
                if connection.execute(insert).first() is None:
                    raise _LostRace
            else:
                connection.execute(j.update().where(j.c.torrent_id == job.torrent_id).values(**values))
            entry = history_entry(job, transition, seq)
            connection.execute(
                h.insert().values(
                    torrent_id=entry.torrent_id,
                    seq=entry.seq,
                    event=entry.event.value,
                    status=entry.status.value,
                    attempt=entry.attempt,
                    at=entry.at,
                    source=entry.source,
                    destination=entry.destination,
                    transfer_mode=None if entry.transfer_mode is None else entry.transfer_mode.value,
                    detail=entry.detail,
                )
            )
        return job

    @hookimpl
    def get_job(self, torrent_id: UUID) -> FsJob | None:
        j = self._database.tables.fs_jobs
        query = sa.select(*_readable(j, JOB_COLUMNS)).where(j.c.torrent_id == torrent_id)
        with self._faults(), self._database.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else rows.job_from_row(row)

    @hookimpl
    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        j = self._database.tables.fs_jobs
        select = sa.select(*_readable(j, JOB_COLUMNS))
        if query.statuses:
            select = select.where(j.c.status.in_(sorted(s.value for s in query.statuses)))
        after = query.after_key()
        if after is not None:
            select = select.where(
                sa.tuple_(j.c.job_created_at, j.c.torrent_id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1]))
            )
        select = select.order_by(j.c.job_created_at, j.c.torrent_id).limit(query.limit + 1)
        with self._faults(), self._database.engine.connect() as connection:
            found = [rows.job_from_row(row) for row in connection.execute(select)]
        return page_of(found, query.limit, JobQuery.cursor_of)

    @hookimpl
    def count_jobs(self) -> Mapping[JobStatus, int]:
        j = self._database.tables.fs_jobs
        query = sa.select(j.c.status, sa.func.count()).group_by(j.c.status)
        with self._faults(), self._database.engine.connect() as connection:
            found = connection.execute(query).all()
        counts: Counter[JobStatus] = Counter()
        for label, count in found:
            counts[rows.job_status_of(label)] += count
        return counts

    @hookimpl
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        h = self._database.tables.fs_job_history
        query = sa.select(*_readable(h, HISTORY_COLUMNS)).where(h.c.torrent_id == torrent_id).order_by(h.c.seq)
        with self._faults(), self._database.engine.connect() as connection:
            entries = [rows.history_from_row(row) for row in connection.execute(query)]
        return tuple(e for e in entries if e is not None)


def _storable_rows(values: Iterable[_V], make: Callable[[_V, list[str]], _Row]) -> tuple[dict[UUID, _Row], list[UUID]]:
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
            log.warning("torrent %s: stored sanitised: %s", row[0], "; ".join(problems))
            sanitised.append(row[0])
    return batch, sanitised


def _readable(table: sa.Table, names: Sequence[str]) -> list[sa.ColumnElement[Any]]:
    """``table``'s columns ``names``, enums read as plain text: a label a newer writer added must not fail the read."""
    return [
        sa.type_coerce(table.c[name], sa.Text) if isinstance(table.c[name].type, sa.Enum) else table.c[name]
        for name in names
    ]


def _storable(transition: JobTransition) -> JobTransition:
    """``transition`` with its texts made storable; a change is logged with the torrent id."""
    problems: list[str] = []
    cleaned = attrs.evolve(
        transition,
        source=sanitize.optional_text(transition.source, "job source", problems),
        destination=sanitize.optional_text(transition.destination, "job destination", problems),
        detail=sanitize.optional_text(transition.detail, "job detail", problems),
    )
    if not problems:
        return transition
    log.warning("torrent %s: job transition stored sanitised: %s", transition.torrent_id, "; ".join(problems))
    return cleaned
