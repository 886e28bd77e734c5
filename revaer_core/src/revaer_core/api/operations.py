"""What the CLI and the HTTP API do with the store: parse operator input, read, retry.

Both surfaces call these functions, so a filter that one refuses the other
refuses too, with the same words. Errors come out as:

- :class:`~revaer_core.errors.InvalidInput` for input the caller can fix (CLI exit 2, HTTP 400),
- :class:`~revaer_core.errors.NotFound` for an unknown id (CLI exit 2, HTTP 404),
- :class:`~revaer_core.errors.RetryRefused` for a retry the job's state does not allow (CLI exit 2, HTTP 409),
- :class:`~revaer_core.api.incidents.StoreIncident` for any failure of the store (CLI exit 3, HTTP 503):
  the store's message is logged under an incident id, and only the id is in the error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar
from uuid import UUID

from revaer_core.api import incidents
from revaer_core.api.incidents import StoreIncident
from revaer_core.api.models import HealthReport, HealthStatus, JobDetail, JobPage, TorrentPage
from revaer_core.errors import InvalidInput, RevaerError, StoreUnavailable
from revaer_core.errors import NotFound as NotFound  # re-exported: callers of these operations catch it here
from revaer_core.errors import RetryRefused as RetryRefused
from revaer_core.health import RUNTIME_STORE, HealthBoard, StoreHealth
from revaer_core.jobs import FsJob, JobStatus, TransitionRefused
from revaer_core.orchestrator.catalog import Catalog
from revaer_core.query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    InvalidQuery,
    JobQuery,
    TorrentQuery,
    TorrentSort,
    select_torrents,
    walk,
)
from revaer_core.redact import redact
from revaer_core.status import TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest name search accepted; longer input is a mistake, not a torrent name.
MAX_SEARCH_LENGTH = 256
#: A name search as the document states it (its length is ``MAX_SEARCH_LENGTH``): anything but NUL.
SEARCH_PATTERN = r"^[^\u0000]*$"


# -- input -------------------------------------------------------------------------


#: A torrent id as the API and the CLI take it: a UUID in its canonical 8-4-4-4-12 form, either case.
#: Python's UUID() also takes braces, ``urn:uuid:`` and bare hex; those are refused, so one form is documented.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def parse_torrent_id(text: str) -> UUID:
    """``text`` as a torrent id, or InvalidInput quoting it."""
    candidate = text if isinstance(text, str) else ""
    if not _UUID.fullmatch(candidate):  # not match: its ``$`` would take a trailing newline
        raise InvalidInput(
            f"{text!r} is not a torrent id (expected a UUID in the form 123e4567-e89b-12d3-a456-426614174000)"
        )
    return UUID(candidate)


def _choices(kind: str, values: Iterable[str], allowed: type[TorrentState] | type[JobStatus]) -> frozenset[str]:
    chosen = frozenset(values)
    known = {member.value for member in allowed}
    unknown = sorted(chosen - known)
    if unknown:
        raise InvalidInput(f"unknown {kind} {unknown[0]!r}; choose from: {', '.join(sorted(known))}")
    return chosen


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    return limit


def _cursor(token: str | None) -> Cursor | None:
    if token is None or token == "":
        return None
    try:
        return Cursor.decode(token)
    except InvalidQuery as exc:
        raise InvalidInput(str(exc)) from None


def torrent_query(
    *,
    states: Iterable[str] = (),
    name: str | None = None,
    sort: str = TorrentSort.ADDED,
    descending: bool = False,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> TorrentQuery:
    """A checked :class:`TorrentQuery` from operator input (strings or the enums themselves)."""
    sorts = {s.value for s in TorrentSort}
    if sort not in sorts:
        raise InvalidInput(f"unknown sort {sort!r}; choose from: {', '.join(sorted(sorts))}")
    if name is not None and len(name) > MAX_SEARCH_LENGTH:
        raise InvalidInput(f"name search is {len(name)} characters long; the most accepted is {MAX_SEARCH_LENGTH}")
    if name is not None and "\x00" in name:
        raise InvalidInput("name search must not contain a NUL character")
    chosen = frozenset(TorrentState(s) for s in _choices("state", states, TorrentState))
    try:
        query = TorrentQuery(
            states=chosen,
            name_contains=name or None,
            sort=TorrentSort(sort),
            descending=descending,
            limit=_limit(limit),
            after=_cursor(cursor),  # a cursor of another sort order is refused here, not in the store
        )
        query.after_key()
    except InvalidQuery as exc:
        raise InvalidInput(str(exc)) from None
    return query


def job_query(*, statuses: Iterable[str] = (), limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> JobQuery:
    """A checked :class:`JobQuery` from operator input."""
    chosen = frozenset(JobStatus(s) for s in _choices("status", statuses, JobStatus))
    try:
        query = JobQuery(statuses=chosen, limit=_limit(limit), after=_cursor(cursor))
        query.after_key()
    except InvalidQuery as exc:
        raise InvalidInput(str(exc)) from None
    return query


# -- store calls -----------------------------------------------------------------


def _call(what: str, fn: Callable[[], T]) -> T:
    """Run a store call; a failure the caller cannot fix becomes a :class:`StoreIncident`.

    Backends raise StoreUnavailable or let their driver's errors through; to an
    operator both mean the same: the store cannot answer now. Either way the
    store's words go to the log under an incident id, and only the id goes on.
    """
    try:
        return fn()
    except StoreIncident:
        raise
    except StoreUnavailable as exc:
        raise incidents.record(what, exc) from exc
    except (RevaerError, TransitionRefused):
        raise
    except InvalidQuery as exc:
        raise InvalidInput(str(exc)) from None
    except Exception as exc:
        log.debug("runtime store failed to %s", what, exc_info=True)  # the traceback, for --debug
        raise incidents.record(what, exc) from exc


def list_torrents(
    store: RuntimeStore, query: TorrentQuery, catalog: Mapping[UUID, TorrentStatus] | None = None
) -> TorrentPage:
    """A page of the live ``catalog`` when there is one (``revaer run``), else of the store.

    A daemon's catalog holds every torrent it runs, hydrated from the store
    and ahead of it by at most a flush: listing it shows what the engine is
    doing now, answers while the database is slow or away, and costs no
    round trip (the store's SQL and :func:`select_torrents` order and
    filter alike, as the contract suite checks).
    """
    if catalog is not None:
        statuses = catalog.snapshot() if isinstance(catalog, Catalog) else catalog  # a Catalog: at one instant
        page = select_torrents(statuses.values(), query)
    else:
        page = _call("list torrents", lambda: store.list_torrents(query))
    return TorrentPage(items=page.items, next_cursor=page.next_cursor)


def walk_torrents(store: RuntimeStore, query: TorrentQuery) -> Iterator[TorrentStatus]:
    """Every torrent the query matches, page after page, from its cursor to the end."""
    return walk(lambda q: _call("list torrents", lambda: store.list_torrents(q)), query)


def get_torrent(
    store: RuntimeStore, torrent_id: UUID, catalog: Mapping[UUID, TorrentStatus] | None = None
) -> TorrentStatus:
    """The torrent's status: the live catalog's when there is one and it knows the torrent, else the store's."""
    if catalog is not None:
        live = catalog.get(torrent_id)
        if live is not None:
            return live
    status = _call("read a torrent", lambda: store.get_torrent(torrent_id))
    if status is None:
        raise NotFound(f"no torrent with id {torrent_id}{_no_store_hint(store)}")
    return status


def list_jobs(store: RuntimeStore, query: JobQuery) -> JobPage:
    page = _call("list FsOps jobs", lambda: store.list_jobs(query))
    return JobPage(items=page.items, next_cursor=page.next_cursor)


def walk_jobs(store: RuntimeStore, query: JobQuery) -> Iterator[FsJob]:
    """Every job the query matches, page after page."""
    return walk(lambda q: _call("list FsOps jobs", lambda: store.list_jobs(q)), query)


def job_detail(store: RuntimeStore, torrent_id: UUID) -> JobDetail:
    job = _call("read an FsOps job", lambda: store.get_job(torrent_id))
    if job is None:
        raise NotFound(f"no FsOps job for torrent {torrent_id}{_no_store_hint(store)}")
    history = _call("read an FsOps job's history", lambda: store.job_history(torrent_id))
    return JobDetail(job=job, history=tuple(history))


def retry_job(store: RuntimeStore, torrent_id: UUID) -> FsJob:
    """Set the torrent's failed job back to pending, for FsOps to run again."""
    if _call("read an FsOps job", lambda: store.get_job(torrent_id)) is None:
        raise NotFound(f"no FsOps job for torrent {torrent_id}{_no_store_hint(store)}")
    try:
        job = _call("retry an FsOps job", lambda: store.retry_job(torrent_id))
    except TransitionRefused as exc:
        raise RetryRefused(str(exc)) from None
    if job is None:  # the job vanished between the two calls (its torrent was removed)
        raise NotFound(f"no FsOps job for torrent {torrent_id}")
    return job


def job_counts(store: RuntimeStore) -> dict[JobStatus, int]:
    """How many FsOps jobs are in each status, every status present (zero when none)."""
    return _call("count FsOps jobs", store.count_jobs)


def store_health(store: RuntimeStore) -> StoreHealth:
    """The store's own report, redacted; a store too broken to report is reported as failing."""
    try:
        health = store.health()
    except Exception as exc:
        return StoreHealth(ok=False, detail=redact(f"health check failed: {type(exc).__name__}: {exc}"))
    return StoreHealth(
        ok=health.ok, detail=redact(health.detail), facts={k: redact(v) for k, v in health.facts.items()}
    )


def health_report(
    store: RuntimeStore, board: HealthBoard | None = None, store_report: StoreHealth | None = None
) -> HealthReport:
    """Overall health: the board's degraded components, plus ``runtime_store`` when the store says it is failing.

    :param store_report: the store's health as already probed; asked of the store here when absent.
    """
    if store_report is None:
        store_report = store_health(store)
    degraded = {k: redact(v) for k, v in (board.degraded if board is not None else {}).items()}
    failed = {k: redact(v) for k, v in (board.failed if board is not None else {}).items()}
    if not store_report.ok:
        degraded.setdefault(RUNTIME_STORE, store_report.detail)
    degraded.update(failed)
    return HealthReport(
        status=HealthStatus.FAILED if failed else HealthStatus.DEGRADED if degraded else HealthStatus.OK,
        backend=store.backend or "none",
        degraded=dict(sorted(degraded.items())),
        store=store_report,
    )


def _no_store_hint(store: RuntimeStore) -> str:
    return "" if store.persistent else " (no runtime store selected: nothing is persisted)"
