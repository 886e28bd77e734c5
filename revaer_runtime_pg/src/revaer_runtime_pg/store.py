"""The PostgreSQL runtime store: every StoreLifecycle, TorrentStore and JobStore hook.

Hot paths skip SQLAlchemy's statement layer but not its pool: upserts COPY
the batch into a per-connection temporary table and merge it with one
``INSERT … ON CONFLICT`` (measured faster than a pipelined ``executemany``);
hydration runs one binary-format query whose row factory builds the statuses
directly. Everything else is SQLAlchemy Core.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
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
    Capability,
    FsJob,
    JobHistoryEntry,
    JobQuery,
    JobTransition,
    Page,
    StoreHealth,
    StoreRole,
    StoreUnavailable,
    TorrentQuery,
    TorrentSort,
    TorrentStatus,
    apply_transition,
    history_entry,
    hookimpl,
    page_of,
)
from revaer_runtime_pg import database, migrate, rows, sanitize
from revaer_runtime_pg.daemon_lock import DaemonLock
from revaer_runtime_pg.embedded import EmbeddedServer
from revaer_runtime_pg.migrate import SchemaState
from revaer_runtime_pg.options import PgOptions, parse_options
from revaer_runtime_pg.schema import HISTORY_COLUMNS, JOB_COLUMNS, PROGRESS_COLUMNS, STATUS_COLUMNS, Tables, tables

log = logging.getLogger(__name__)

#: Types psycopg dumps :data:`STATUS_COLUMNS` as, for binary COPY. Binary COPY carries no type per
#: field, so the server reads each with its column's binary format: an enum's is its label, and
#: ``files`` goes as bytes already in JSONB's binary form (``rows.jsonb_binary``).
COPY_TYPES: tuple[str, ...] = (
    "uuid", "text", "text", "text", "int8", "int8", "int8", "int8", "int8", "float8", "bytea",
    "text", "text", "bool", "timestamptz", "timestamptz", "timestamptz",
)  # fmt: skip
_STAGING = "revaer_torrents_in"  # per-connection temporary table the COPY fills
_STAGING_READY = "revaer_staging_ready"  # key in the pooled connection's ``info``
_PROGRESS_STAGING = "revaer_progress_in"  # per-connection temporary table of progress-only changes
_PROGRESS_READY = "revaer_progress_ready"
#: Types of :data:`PROGRESS_COLUMNS` for binary COPY.
PROGRESS_TYPES: tuple[str, ...] = ("uuid", "int8", "int8", "int8", "int8", "int8", "float8", "timestamptz")
_FIRST_INSERT_RETRIES = 3


class _LostRace(Exception):
    """Another transaction created the torrent's job first: read it again and apply on top."""


@attrs.frozen
class Statements:
    """The hand-written SQL of the hot paths, composed once per schema (identifiers quoted by psycopg)."""

    staging: sql.Composed  #: the per-connection temporary table COPY fills
    copy: sql.Composed  #: COPY of a batch into it
    merge: sql.Composed  #: one INSERT … ON CONFLICT from it into torrents
    load: sql.Composed  #: every status, for hydration
    progress_staging: sql.Composed  #: the temporary table progress-only changes are copied into
    progress_copy: sql.Composed  #: COPY of those changes into it
    progress_update: sql.Composed  #: one UPDATE … FROM it, returning the ids it found

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        torrents = sql.Identifier(schema, "torrents")
        staging = sql.Identifier(_STAGING)
        progress = sql.Identifier(_PROGRESS_STAGING)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in STATUS_COLUMNS)
        updated = [c for c in STATUS_COLUMNS if c != "id"]
        merge = sql.SQL(
            "INSERT INTO {torrents} AS t ({columns}) SELECT {columns} FROM pg_temp.{staging} "
            "ON CONFLICT (id) DO UPDATE SET {assignments} "
            "WHERE ({current}) IS DISTINCT FROM ({incoming})"  # an unchanged row is not rewritten
        ).format(
            torrents=torrents,
            columns=columns,
            staging=staging,
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updated
            ),
            current=sql.SQL(", ").join(sql.Identifier("t", c) for c in updated),
            incoming=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in updated),
        )
        return cls(
            staging=sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(staging, torrents),
            copy=sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(staging, columns),
            merge=merge,
            load=sql.SQL("SELECT {} FROM {}").format(columns, torrents),
            progress_staging=sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (id uuid, downloaded int8, total int8, eta_seconds int8, "
                "download_bps int8, upload_bps int8, ratio float8, last_updated timestamptz) ON COMMIT DELETE ROWS"
            ).format(progress),
            progress_copy=sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(
                progress, sql.SQL(", ").join(sql.Identifier(c) for c in PROGRESS_COLUMNS)
            ),
            progress_update=sql.SQL(
                "UPDATE {} AS t SET {} FROM pg_temp.{} AS s WHERE t.id = s.id RETURNING t.id"
            ).format(
                torrents,
                sql.SQL(", ").join(
                    sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in PROGRESS_COLUMNS[1:]
                ),
                progress,
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
            status = migrate.upgrade(engine, options.schema)
            log.info("runtime store: %s", status.describe())
        problem = status.problem()
        if problem is not None:
            raise problem
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


def _status_maker(cursor: Any) -> psycopg.rows.RowMaker[TorrentStatus | None]:
    """A psycopg row factory: each row becomes a status; a row that cannot is logged and becomes ``None``."""

    def make(values: Sequence[Any]) -> TorrentStatus | None:
        try:
            return rows.status_from_row(values)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("torrent %s: stored row cannot be read, left out: %s", values[0], exc)
            return None

    return make


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
    def runtime_commands(self) -> Iterable[click.Command]:
        from revaer_runtime_pg.commands import all_commands  # the CLI modules load only when the CLI asks

        return all_commands()

    @hookimpl
    def store_capabilities(self) -> Iterable[str]:
        return {Capability.DURABLE, Capability.RESUME_DATA}

    @hookimpl
    def store_health(self) -> StoreHealth:
        db = self._database
        facts = {
            "database": database.where(db.dsn),
            "mode": "embedded" if db.embedded is not None else "external",
            "schema": db.options.schema,
        }
        try:
            with db.engine.connect() as connection:
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
            facts["writer lock"] = "held" if lost is None else "lost"
            if lost is not None:
                return StoreHealth(ok=False, detail=lost, facts=facts)
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
    def _faults(self) -> Iterator[None]:
        """Connection faults as :class:`StoreUnavailable` (one line, no password); the caller retries."""
        try:
            yield
        except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError) as exc:
            raise database.unavailable(exc, self._database.dsn) from exc

    # -- torrents: writes ---------------------------------------------------------------------

    @hookimpl
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID] | None:
        sanitised: list[UUID] = []
        batch: dict[UUID, rows.StatusRow] = {}
        for status in statuses:
            problems: list[str] = []
            batch[status.id] = rows.status_row(status, problems)
            if problems:
                log.warning("torrent %s: stored sanitised: %s", status.id, "; ".join(problems))
                sanitised.append(status.id)
        if not batch:
            return None
        with self._faults():
            try:
                self._merge(list(batch.values()))
            except (psycopg.DataError, sa.exc.DataError, psycopg.IntegrityError, sa.exc.IntegrityError) as exc:
                log.warning("runtime store: a batch of %d statuses was refused (%s); storing them one by one",
                            len(batch), database.one_line(getattr(exc, "orig", None) or exc))  # fmt: skip
                sanitised.extend(self._merge_one_by_one(list(batch.values())))
        return sanitised or None

    def _merge(self, batch: Sequence[rows.StatusRow]) -> None:
        """COPY ``batch`` into the staging table and merge it: three round trips whatever its size."""
        db = self._database
        with db.engine.begin() as connection:
            raw = _raw(connection)
            info = connection.connection.info
            if not info.get(_STAGING_READY):
                raw.execute(db.statements.staging)
            with raw.cursor() as cursor:
                with cursor.copy(db.statements.copy) as copy:
                    copy.set_types(COPY_TYPES)  # binary COPY: measured ~2.5x faster to encode than text
                    for row in batch:
                        copy.write_row(row)
                cursor.execute(db.statements.merge)
        info[_STAGING_READY] = True  # only once the transaction that created it committed

    @hookimpl
    def update_progress(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        batch: dict[UUID, rows.ProgressRow] = {}
        for status in statuses:
            problems: list[str] = []
            batch[status.id] = rows.progress_row(status, problems)
            if problems:
                log.warning("torrent %s: stored sanitised: %s", status.id, "; ".join(problems))
        if not batch:
            return []
        db = self._database
        with self._faults(), db.engine.begin() as connection:
            raw = _raw(connection)
            info = connection.connection.info
            if not info.get(_PROGRESS_READY):
                raw.execute(db.statements.progress_staging)
            with raw.cursor() as cursor:
                with cursor.copy(db.statements.progress_copy) as copy:
                    copy.set_types(PROGRESS_TYPES)
                    for row in batch.values():
                        copy.write_row(row)
                cursor.execute(db.statements.progress_update)
                found = {row[0] for row in cursor.fetchall()}
        info[_PROGRESS_READY] = True
        return [torrent_id for torrent_id in batch if torrent_id not in found]

    def _merge_one_by_one(self, batch: Sequence[rows.StatusRow]) -> list[UUID]:
        """The slow path after a refused batch: every row alone, so one bad row costs only itself."""
        refused: list[UUID] = []
        for row in batch:
            try:
                self._merge([row])
            except (psycopg.DataError, sa.exc.DataError, psycopg.IntegrityError, sa.exc.IntegrityError) as exc:
                log.warning("torrent %s: not stored, PostgreSQL refused it: %s", row[0],
                            database.one_line(getattr(exc, "orig", None) or exc))  # fmt: skip
                refused.append(row[0])
        return refused

    @hookimpl
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        t = self._database.tables.torrents
        with self._faults(), self._database.engine.begin() as connection:
            connection.execute(t.delete().where(t.c.id == sa.any_(sa.literal(list(torrent_ids), pg.ARRAY(sa.Uuid)))))

    @hookimpl
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        t = self._database.tables.torrents
        with self._faults(), self._database.engine.begin() as connection:
            connection.execute(t.update().where(t.c.id == torrent_id).values(resume_data=bytes(data)))

    # -- torrents: reads ----------------------------------------------------------------------

    @hookimpl
    def load_torrents(self) -> Iterable[TorrentStatus]:
        db = self._database
        # Text format: measured faster than binary for these rows (UUIDs and JSONB dominate).
        with (
            self._faults(),
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
        with self._faults(), self._database.engine.connect() as connection:
            return {ident: bytes(data) for ident, data in connection.execute(query)}

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
        with self._database.engine.begin() as connection:
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
                )
                if connection.execute(insert).rowcount == 0:
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
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        h = self._database.tables.fs_job_history
        query = sa.select(*_readable(h, HISTORY_COLUMNS)).where(h.c.torrent_id == torrent_id).order_by(h.c.seq)
        with self._faults(), self._database.engine.connect() as connection:
            entries = [rows.history_from_row(row) for row in connection.execute(query)]
        return tuple(e for e in entries if e is not None)


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
