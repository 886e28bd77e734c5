"""Listing queries and keyset cursors shared by every store.

A cursor is an opaque string naming the sort key of the last row a page held.
The next page starts strictly after that key, so rows inserted while a client
pages never make it skip or repeat a row that existed when it started. The
encoding lives here so that every backend reads the cursors of every other.
"""

from __future__ import annotations

import base64
import binascii
import enum
import heapq
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import attrs

from revaer_core.jobs import FsJob, JobStatus
from revaer_core.status import TorrentState, TorrentStatus

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Longest cursor accepted: a name sort carries the last name, which the store bounds far below this.
MAX_CURSOR_LENGTH = 8192
#: The characters of a cursor: unpadded URL-safe base64, so it goes in a query string as it is.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
_CURSOR = re.compile(CURSOR_PATTERN)


class InvalidQuery(ValueError):
    """A filter, sort or cursor a caller passed cannot be used; the message says why."""


class TorrentSort(enum.StrEnum):
    """Orders a torrent listing can take; ties are broken by torrent id."""

    ADDED = "added"  #: when the torrent was added
    NAME = "name"  #: by name, unnamed torrents first
    UPDATED = "updated"  #: by last change; rows that change while paging may move


def _page_size(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"{attribute.name} must be between 1 and {MAX_PAGE_SIZE}, got {value}")


def _states(states: Iterable[TorrentState]) -> frozenset[TorrentState]:
    return frozenset(TorrentState(s) for s in states)


def _job_statuses(statuses: Iterable[JobStatus]) -> frozenset[JobStatus]:
    return frozenset(JobStatus(s) for s in statuses)


@attrs.frozen
class Cursor:
    """The decoded position a page ended at: the listing's order, the last row's sort value and id."""

    value: str  #: ISO-8601 time for time sorts, the name for ``NAME``
    id: UUID
    order: str = ""  #: which listing order issued it; a cursor of another order is refused

    def encode(self) -> str:
        raw = json.dumps([self.order, self.value, str(self.id)], separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor ``token`` encodes, checked so that no forged value reaches a store.

        A cursor is only ever one this module encoded: three strings, the
        value without NUL or lone surrogates and of bounded length. Anything
        else is refused here, the same way for every backend.
        """
        refused = InvalidQuery("cursor is not one this server issued; start from the first page")
        if len(token) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(token):  # b64decode would skip a stray character
            raise refused
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            order, value, ident = json.loads(raw)
            if not all(isinstance(part, str) for part in (order, value, ident)):
                raise refused
            value.encode("utf-8")  # a lone surrogate cannot be stored or compared by a database
            if "\x00" in value or "\x00" in order:
                raise refused
            return cls(value=value, id=UUID(ident), order=order)
        except (binascii.Error, ValueError, TypeError, UnicodeError) as exc:
            raise refused from exc

    def time(self) -> datetime:
        """The sort value as a timezone-aware time, for the time-ordered sorts."""
        try:
            moment = datetime.fromisoformat(self.value)
        except ValueError as exc:
            raise InvalidQuery("cursor does not belong to this sort order; start from the first page") from exc
        if moment.utcoffset() is None:
            raise InvalidQuery("cursor is not one this server issued; start from the first page")
        return moment


def _cursor_matches(
    query: TorrentQuery | JobQuery, attribute: attrs.Attribute[Cursor | None], after: Cursor | None
) -> None:
    if after is not None and after.order != query.order:
        raise InvalidQuery(
            f"the cursor belongs to another sort order ({after.order or 'unknown'}, not {query.order}); "
            "start from the first page"
        )


@attrs.frozen
class TorrentQuery:
    """A filtered page of torrents. Every filter is optional; all given must match."""

    states: frozenset[TorrentState] = attrs.field(default=frozenset(), converter=_states)
    name_contains: str | None = None  #: case-insensitive substring of the name
    sort: TorrentSort = TorrentSort.ADDED
    descending: bool = False
    limit: int = attrs.field(default=DEFAULT_PAGE_SIZE, validator=_page_size)
    after: Cursor | None = attrs.field(default=None, validator=_cursor_matches)

    @property
    def order(self) -> str:
        """The name cursors of this listing carry: its sort and direction."""
        return f"{self.sort.value}:{'desc' if self.descending else 'asc'}"

    def matches(self, status: TorrentStatus) -> bool:
        """Whether ``status`` passes the filters (not the cursor)."""
        if self.states and status.state not in self.states:
            return False
        if self.name_contains:
            return self.name_contains.casefold() in (status.name or "").casefold()
        return True

    def key(self, status: TorrentStatus) -> tuple[Any, UUID]:
        """The (value, id) pair this query orders ``status`` by."""
        match self.sort:
            case TorrentSort.ADDED:
                return (status.added_at, status.id)
            case TorrentSort.UPDATED:
                return (status.last_updated, status.id)
            case TorrentSort.NAME:
                return (status.name or "", status.id)

    def after_key(self) -> tuple[Any, UUID] | None:
        """The key of the cursor's row, comparable with :meth:`key`."""
        if self.after is None:
            return None
        value = self.after.value if self.sort is TorrentSort.NAME else self.after.time()
        return (value, self.after.id)

    def cursor_of(self, status: TorrentStatus) -> Cursor:
        """The cursor that resumes this listing after ``status``."""
        value, ident = self.key(status)
        return Cursor(value=value if isinstance(value, str) else value.isoformat(), id=ident, order=self.order)


@attrs.frozen
class JobQuery:
    """A filtered page of FsOps jobs, oldest job first (ties by torrent id)."""

    statuses: frozenset[JobStatus] = attrs.field(default=frozenset(), converter=_job_statuses)
    limit: int = attrs.field(default=DEFAULT_PAGE_SIZE, validator=_page_size)
    after: Cursor | None = attrs.field(default=None, validator=_cursor_matches)

    #: The name cursors of job listings carry.
    order: ClassVar[str] = "jobs"

    def matches(self, job: FsJob) -> bool:
        return not self.statuses or job.status in self.statuses

    @staticmethod
    def key(job: FsJob) -> tuple[datetime, UUID]:
        """The (created_at, torrent id) pair jobs are ordered by."""
        return (job.created_at, job.torrent_id)

    def after_key(self) -> tuple[datetime, UUID] | None:
        return None if self.after is None else (self.after.time(), self.after.id)

    @classmethod
    def cursor_of(cls, job: FsJob) -> Cursor:
        return Cursor(value=job.created_at.isoformat(), id=job.torrent_id, order=cls.order)


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is ``None`` on the last page."""

    items: tuple[T, ...] = attrs.field(converter=tuple)
    next_cursor: str | None = None


def page_of(items: Sequence[T], limit: int, cursor_of: Callable[[T], Cursor]) -> Page[T]:
    """Cut a page from ``items`` (already filtered, ordered and past the cursor).

    ``items`` may hold one row more than ``limit``: that row's presence is how a
    backend tells there is a next page without counting.
    """
    if len(items) > limit:
        kept = items[:limit]
        return Page(items=kept, next_cursor=cursor_of(kept[-1]).encode())
    return Page(items=items)


R = TypeVar("R")


def _page_in_memory(
    items: Iterable[R],
    matches: Callable[[R], bool],
    key: Callable[[R], Any],
    after: Any,
    *,
    descending: bool,
    limit: int,
    cursor_of: Callable[[R], Cursor],
) -> Page[R]:
    """The page of ``items`` that match, past ``after`` in ``key`` order: filter, resume, order, cut.

    Only the page is ordered (a heap of ``limit + 1``), not every item: a page
    of a 100,000-torrent catalog costs one pass over it.
    """

    def wanted(item: R) -> bool:
        if not matches(item):
            return False
        if after is None:
            return True
        return bool(key(item) < after if descending else key(item) > after)

    pick = heapq.nlargest if descending else heapq.nsmallest
    return page_of(pick(limit + 1, filter(wanted, items), key=key), limit, cursor_of)


def select_torrents(statuses: Iterable[TorrentStatus], query: TorrentQuery) -> Page[TorrentStatus]:
    """Answer ``query`` over statuses held in memory.

    For backends that cannot order and filter in their storage, and for a
    daemon's catalog; a database backend does the same in SQL.
    """
    return _page_in_memory(statuses, query.matches, query.key, query.after_key(), descending=query.descending,
                           limit=query.limit, cursor_of=query.cursor_of)  # fmt: skip


def select_jobs(jobs: Iterable[FsJob], query: JobQuery) -> Page[FsJob]:
    """Answer ``query`` over jobs held in memory, as :func:`select_torrents` does for statuses."""
    return _page_in_memory(jobs, query.matches, JobQuery.key, query.after_key(), descending=False,
                           limit=query.limit, cursor_of=JobQuery.cursor_of)  # fmt: skip


Q = TypeVar("Q", TorrentQuery, JobQuery)


def walk(fetch: Callable[[Q], Page[T]], query: Q) -> Iterator[T]:
    """Every row ``query`` matches: ``fetch`` one page after another, following the cursors."""
    while True:
        page = fetch(query)
        yield from page.items
        if page.next_cursor is None:
            return
        query = attrs.evolve(query, after=Cursor.decode(page.next_cursor))
