"""The write-behind buffer between the catalog and the store.

Event handlers only mark a torrent dirty (a dict assignment under a lock);
a background thread flushes the dirty set through the store's batch hooks.
Progress coalesces (the latest status wins) between flushes; lifecycle
changes wake the writer at once. A failed flush keeps every row, turns the
``runtime_store`` health component degraded and is retried with exponential
backoff and jitter; the buffer never holds more than one entry per torrent.

Engines hand resume data here too (:meth:`StoreWriter.save_resume_data`), so
no engine thread waits on the database: the latest blob per torrent is kept,
and each flush writes it in one batch right after the statuses, so the store
already holds every torrent whose resume data it is given.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, TypeVar, cast
from uuid import UUID

import attrs

from revaer_core.backoff import Backoff
from revaer_core.errors import WriterFenced
from revaer_core.health import RUNTIME_STORE, WRITER_LOCK, HealthBoard
from revaer_core.logthrottle import LogThrottle
from revaer_core.metrics import Metrics
from revaer_core.redact import redact
from revaer_core.settings import Durability
from revaer_core.sources import StoredSource
from revaer_core.status import TorrentStatus
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How this writer reports on the health board, beside FsOps' job writes.
SOURCE = "torrent_writer"

#: Rows per store call when a large backlog drains (after an outage, say).
MAX_BATCH = 10_000
#: Resume blobs per store call (libtorrent's are about 12 KB each: some 12 MB a call).
MAX_RESUME_BATCH = 1_000
#: How many intervals back the writer looks for the longest flush when it schedules the next.
LEAD_WINDOW = 4
#: How far past an interval, in intervals, a progress may wait for the flush that commits it before the
#: writer flushes sooner. Each flush rewrites the row of every torrent that moved since the last: flushing
#: before it must costs CPU time in proportion, and most of all when flushes are slow because the CPU is busy.
LAG_SLACK = 0.5
#: The throttle key of a failing flush.
WRITE_FAULT = "runtime store write"

#: The series a writer moves, declared when it is built: (name, kind, help).
WRITER_SERIES = (
    ("revaer_rows_flushed_total", "counter", "Torrent rows written to or removed from the store."),
    ("revaer_flushes_total", "counter", "Batches the store writer flushed."),
    ("revaer_flush_duration_seconds_total", "counter", "Time spent in store flushes."),
    ("revaer_last_flush_duration_seconds", "gauge", "Duration of the last store flush."),
    ("revaer_store_errors_total", "counter", "Store writes that failed and were kept for retry."),
)


class Pending(NamedTuple):
    """What the store still has to learn about one torrent.

    ``status`` ``None`` means delete it; ``remove_first`` keeps a delete that a
    later re-add superseded, so the old incarnation's jobs are dropped in order.
    ``progress_only`` says nothing but progress changed since the store last
    took this torrent whole, so the store's narrow ``update_progress`` will do.
    ``source`` is a newly added torrent's source, stored right after its status.
    A named tuple, cheap to make; a progress event makes none (see :data:`Entry`).
    """

    status: TorrentStatus | None
    remove_first: bool = False
    progress_only: bool = False
    source: StoredSource | None = None


#: An entry of the buffer. A bare status is a progress-only one (``Pending(status, progress_only=True)``):
#: progress events make almost every entry, and marking one dirty then allocates nothing but the status.
Entry = Pending | TorrentStatus


def _pending(entry: Entry) -> Pending:
    return entry if isinstance(entry, Pending) else Pending(entry, progress_only=True)


@attrs.frozen
class DrainReport:
    """What a shutdown flush could not write before its deadline."""

    unwritten: tuple[UUID, ...]
    resume_unwritten: tuple[UUID, ...] = ()  #: torrents whose latest resume data did not reach the store

    @property
    def complete(self) -> bool:
        return not self.unwritten and not self.resume_unwritten


DEFAULT_BACKOFF = Backoff()


def _ids_for_log(ids: Sequence[UUID], shown: int = 10) -> str:
    head = ", ".join(str(i) for i in ids[:shown])
    return head + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


class StoreWriter:
    """Flushes dirty statuses to the store on its own thread."""

    def __init__(
        self,
        store: RuntimeStore,
        *,
        interval: float = 0.25,
        durability: Durability = Durability.BATCHED,
        health: HealthBoard | None = None,
        metrics: Metrics | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        on_written: Callable[[Sequence[TorrentStatus], Sequence[UUID]], None] | None = None,
        current: Callable[[UUID], TorrentStatus | None] | None = None,
    ) -> None:
        """:param current: where a torrent's latest status is found (the catalog's ``get``). With it, a flush
        lets each progress-only status go once the store has encoded it, and finds the torrent's status
        there again should the write fail or the store lack the torrent; without it (or with an
        ``on_written`` listener, which is told the very statuses written), the flush keeps them to the end.
        """
        self._store = store
        self._interval = interval
        self._sync = durability is Durability.SYNC
        self._health = health or HealthBoard()
        self._metrics = metrics or Metrics()
        self._backoff = backoff
        self._on_written = on_written  #: (upserted statuses, removed ids) after each committed flush
        self._current = current
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._pending: dict[UUID, Entry] = {}
        self._resume: dict[UUID, bytes] = {}  #: the latest resume data per torrent not yet written
        self._throttle = LogThrottle(log)
        self._lock = threading.Lock()  # entered directly on the event path: Condition.__enter__ is a Python call
        self._cond = threading.Condition(self._lock)
        self._urgent = False
        self._inflight = 0  #: batches taken by the thread and not yet written or put back
        self._ticket = 0  #: numbers every change buffered; see :meth:`wait_written`
        self._written = 0  #: every change numbered up to this one is in the store
        self._stopping = False
        self._failures = 0
        self._taken = time.monotonic()  #: when the thread last took a batch on schedule (not urgently)
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  #: (ended, took) of late flushes
        self._thread: threading.Thread | None = None
        self._sync_lock = threading.Lock()  # one synchronous write at a time keeps their order
        for name, kind, text in WRITER_SERIES:
            self._metrics.declare(name, kind, text)
        self._metrics.register_sampled(
            "revaer_buffer_depth", "Torrents waiting in the write-behind buffer.", lambda: [({}, float(self.depth))]
        )
        self._metrics.register_sampled(
            "revaer_resume_buffer_depth",
            "Torrents whose resume data waits in the write-behind buffer.",
            lambda: [({}, float(self.resume_depth))],
        )

    # -- called from event handlers -------------------------------------------------

    def progress(self, status: TorrentStatus) -> int:
        """:meth:`upsert` of a status whose change touched only progress and rates: the event path's call.

        Its common case (nothing but progress waits for the torrent) is a dict
        assignment under the lock; anything else takes :meth:`upsert`'s way.
        """
        if not self._sync:
            with self._lock:
                pending = self._pending
                previous = pending.setdefault(status.id, status)  # UUID's hash is a Python call: one when new
                if previous is status or type(previous) is not Pending:
                    if previous is not status:
                        pending[status.id] = status  # newer progress of a torrent already waiting
                    elif len(pending) == 1 and not self._resume:
                        self._cond.notify()  # the first entry: the writer waits out the rest of its interval
                    self._ticket += 1
                    return self._ticket
        return self.upsert(status, progress_only=True)

    def upsert(
        self,
        status: TorrentStatus,
        *,
        urgent: bool = False,
        progress_only: bool = False,
        source: StoredSource | None = None,
    ) -> int:
        """Mark ``status`` (and a new torrent's ``source``) for writing; ``urgent`` wakes the writer now.

        ``progress_only``: the change that made this status touched nothing but
        progress and rates. Returns the change's ticket for :meth:`wait_written`.
        """
        with self._cond:
            waiting = self._pending.get(status.id)
            previous = None if waiting is None else _pending(waiting)
            remove_first = previous is not None and (previous.status is None or previous.remove_first)
            narrow = progress_only and not remove_first and (previous is None or previous.progress_only)
            if source is None and previous is not None and previous.status is not None:
                source = previous.source  # a source waiting to be written stays with the newer status
            entry = Pending(status, remove_first, narrow and source is None, source)
            if not self._sync or previous is not None:
                return self._queue(status.id, entry, urgent)  # sync mode queues too when older writes wait
            self._ticket += 1
            ticket = self._ticket
        return 0 if self._write_now(status.id, entry) else ticket

    def save_resume_data(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """Keep the engines' resume data for the next flush, and start that flush now. Never waits.

        The latest blob per torrent wins. Urgent: engines already pace their
        saves (at the flush interval), so waiting another interval would only
        widen what a crash costs them. Written after the statuses of the same
        flush; data of a torrent whose removal waits is dropped (the store
        would drop it anyway).
        """
        with self._cond:
            for torrent_id, data in items:
                if not self._removal_waits(torrent_id):
                    self._resume[torrent_id] = data
            if self._resume and not self._urgent:
                self._urgent = True
                self._cond.notify()

    def remove(self, torrent_id: UUID) -> int:
        """Mark ``torrent_id`` for deletion; always urgent. Returns the change's ticket."""
        with self._cond:
            self._resume.pop(torrent_id, None)
            if not self._sync or torrent_id in self._pending:
                return self._queue(torrent_id, Pending(None), urgent=True)
            self._ticket += 1
            ticket = self._ticket
        return 0 if self._write_now(torrent_id, Pending(None)) else ticket

    def wait_written(self, ticket: int, timeout: float) -> bool:
        """Wait until the change numbered ``ticket`` (and every older one) is in the store; ``False`` on timeout.

        How an operator's add or choice is acknowledged only once it is stored,
        while the writer keeps batching: the wait ends at the first committed
        flush that took the change, however busy the buffer stays.
        """
        end = time.monotonic() + timeout
        with self._cond:
            while self._written < ticket:
                remaining = end - time.monotonic()
                if remaining <= 0 or (self._thread is None and not self._sync):
                    return False
                self._cond.wait(remaining)
        return True

    def _queue(self, torrent_id: UUID, entry: Entry, urgent: bool) -> int:
        """Buffer ``entry`` (lock held) and wake the writer only when it has a reason to wake.

        It waits for the first entry, then for the rest of the interval or an urgent one:
        waking it for every progress event would cost a thread switch per event.
        """
        first = not self._pending and not self._resume
        self._pending[torrent_id] = entry
        self._ticket += 1
        if first or (urgent and not self._urgent):
            self._urgent = self._urgent or urgent
            self._cond.notify()
        return self._ticket

    def _write_now(self, torrent_id: UUID, entry: Pending) -> bool:
        """Durability ``sync``: write in the caller's thread; a failure leaves it to the writer thread.

        A change written here is in the store when this returns ``True``, so its
        ticket needs no wait (0); one left to the thread keeps its ticket.
        """
        with self._sync_lock:
            if self._flush_or_keep({torrent_id: entry}):
                return True
            with self._cond:
                self._cond.notify()  # the entry is back in the buffer: the thread retries it
            return False

    # -- the writer thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._taken = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="revaer-store-writer", daemon=True)
            self._thread.start()

    @property
    def depth(self) -> int:
        """Torrents waiting to be written."""
        with self._cond:
            return len(self._pending)

    @property
    def resume_depth(self) -> int:
        """Torrents whose latest resume data waits to be written."""
        with self._cond:
            return len(self._resume)

    def _take(self) -> tuple[dict[UUID, Entry], dict[UUID, bytes], int]:
        """Wait for work, let it coalesce until the schedule's next flush unless urgent, then take it all.

        A scheduled flush begins one interval after the previous one began, so
        a progress the catalog shows just after a flush was taken waits that
        interval and the next flush for its commit. Once the longest flush of
        the last :data:`LEAD_WINDOW` intervals takes more than
        :data:`LAG_SLACK` of an interval, the next begins that much sooner, so
        the wait stays within an interval and a half while flushes take under
        three quarters of one (beyond that they run back to back). Not
        sooner: a flush rewrites every torrent that moved since the last, so
        with 10,000 torrents moving, flushing each interval less the whole
        flush doubled the rows written just when the CPU was busiest, for a
        wait the store's bound (two intervals) did not need. The longest
        flush, not the last: a flush right after an urgent one carries almost
        nothing and is quick, and the one after it carries a whole interval's
        rows. An urgent flush (a lifecycle change, resume data) comes in
        between and leaves that schedule as it was: it used to start a whole
        interval over, so progress waited longest just when the engines'
        saves made flushes most frequent. Returns the batch, the resume data
        and the last ticket they include.
        """
        with self._cond:
            while not self._pending and not self._resume and not self._stopping:
                self._cond.wait()
            deadline = self._taken + self._interval - self._lead()
            while not self._urgent and not self._stopping and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            if not self._urgent:
                self._taken = time.monotonic()
            batch, self._pending, self._urgent = self._pending, {}, False
            resume, self._resume = self._resume, {}
            self._inflight += bool(batch or resume)
            return batch, resume, self._ticket

    def _lead(self) -> float:
        """How much sooner than an interval the next flush begins (lock held): see :meth:`_take`.

        The longest flush that ended in the last :data:`LEAD_WINDOW` intervals,
        less :data:`LAG_SLACK` of an interval; 0 when none took longer.
        """
        recent = self._recent
        since = time.monotonic() - LEAD_WINDOW * self._interval
        while recent and recent[0][0] < since:
            recent.popleft()
        longest = max((took for _, took in recent), default=0.0)
        return max(0.0, longest - LAG_SLACK * self._interval)

    def _run(self) -> None:
        while True:
            batch, resume, ticket = self._take()
            if not batch and not resume:
                return  # stopping and nothing left
            began = time.monotonic()
            written = self._flush_or_keep(batch, resume)
            # Let the batch go now, not when the next one is taken: held through the interval, it kept every
            # status the catalog replaced meanwhile alive, and the garbage collector ran over them again and again.
            del batch, resume
            with self._cond:
                ended = time.monotonic()
                self._recent.append((ended, ended - began))
                self._inflight -= 1
                if written:
                    self._written = max(self._written, ticket)
                self._cond.notify_all()
            if not written:
                if self._stopping:
                    return  # close() drains what is left, against its deadline
                self._pause(self._backoff.delay(self._failures, self._rng))

    def _pause(self, seconds: float) -> None:
        """Sleep through a backoff; new work does not cut it short, shutdown does."""
        end = time.monotonic() + seconds
        with self._cond:
            while not self._stopping and (remaining := end - time.monotonic()) > 0:
                self._cond.wait(remaining)

    def _flush_or_keep(self, taken: dict[UUID, Entry], resume: dict[UUID, bytes] | None = None) -> bool:
        """Write ``taken`` (which this takes apart), then ``resume``; on a failure keep what did not land for a retry.

        ``True`` if all did. ``on_written`` hears of the statuses as soon as
        they are committed, before the resume data is written in its own
        transaction: a listener learns what the store holds when it holds it,
        not a resume write later (some 500 blobs a flush at 10,000 torrents),
        nor never when only the resume data failed.
        """
        resume = resume or {}
        batch, narrow = _split(taken)
        ids = list(narrow)
        lookup = self._current
        kept: dict[UUID, TorrentStatus] | None = None
        if lookup is None or self._on_written is not None:
            kept = dict(narrow)  # the statuses themselves are needed after the write
            lookup = kept.get
        stored = False  #: the statuses are committed: a failure of the resume data after them keeps only it
        try:
            upserts, removals = self._flush_batch(batch, narrow, lookup)
            stored = True
            if kept:
                upserts += kept.values()
            if batch or ids:
                self._report_written(upserts, removals)
            self._flush_resume(resume)
        except Exception as exc:
            if not stored:
                self._keep(batch)
                self._keep_progress(ids, lookup)
            self._keep_resume(resume)
            self._failures += 1
            self._metrics.inc("revaer_store_errors_total")
            reason = redact(f"{type(exc).__name__}: {exc}")
            self._health.degrade(RUNTIME_STORE, reason, source=SOURCE)
            if isinstance(exc, WriterFenced):  # nothing landed; the daemon decides whether writing goes on
                self._health.fail(WRITER_LOCK, str(exc))
            self._throttle.failure(
                WRITE_FAULT,
                "runtime store write failed for %d torrent(s) (%s), %d resume blob(s): %s; kept for retry (failure %d)",
                len(batch) + len(ids),
                _ids_for_log([*batch, *ids] or list(resume)),
                len(resume),
                reason,
                self._failures,
            )
            return False
        if self._failures:
            self._throttle.recovered(WRITE_FAULT, "runtime store writes succeed again")
            self._failures = 0
        self._health.recover(RUNTIME_STORE, source=SOURCE)
        if not (batch or ids):
            self._report_written(upserts, removals)  # resume data alone: reported once it is committed
        return True

    def _report_written(self, upserts: Sequence[TorrentStatus], removals: Sequence[UUID]) -> None:
        """Tell ``on_written`` what a flush committed; its failure is logged, never raised."""
        if self._on_written is not None:
            try:
                self._on_written(upserts, removals)
            except Exception:  # the rows are in the store: a listener's bug must not rewrite them
                log.exception("on_written listener failed after a committed flush")

    def _keep_resume(self, resume: dict[UUID, bytes]) -> None:
        """Put failed resume data back unless newer data (or the torrent's removal) arrived meanwhile."""
        with self._cond:
            for torrent_id, data in resume.items():
                if not self._removal_waits(torrent_id):
                    self._resume.setdefault(torrent_id, data)

    def _removal_waits(self, torrent_id: UUID) -> bool:
        """Whether the buffer holds the torrent's removal (lock held): its resume data is dropped, not stored."""
        waiting = self._pending.get(torrent_id)
        return isinstance(waiting, Pending) and waiting.status is None

    def _flush_resume(self, resume: dict[UUID, bytes]) -> None:
        """Resume data after the statuses, in chunks of :data:`MAX_RESUME_BATCH`."""
        for items in _chunks(list(resume.items()), MAX_RESUME_BATCH):
            self._store.save_resume_data_batch(items)

    def _keep_progress(self, ids: Sequence[UUID], current: Callable[[UUID], TorrentStatus | None]) -> None:
        """Put failed progress back as ``current`` finds it, unless anything newer arrived meanwhile.

        With nothing newer waiting, the catalog still holds the very status
        the flush took (each of its changes is marked here), or a newer one
        about to be marked; without it the torrent's removal is on its way.
        """
        with self._cond:
            for torrent_id in ids:
                if torrent_id not in self._pending and (status := current(torrent_id)) is not None:
                    self._pending[torrent_id] = status  # whatever waits already includes the failed progress

    def _keep(self, batch: dict[UUID, Pending]) -> None:
        """Put a failed batch back, behind anything newer that arrived meanwhile."""
        with self._cond:
            for torrent_id, failed in batch.items():
                waiting = self._pending.get(torrent_id)
                if waiting is None:
                    self._pending[torrent_id] = failed
                    continue
                newer = _pending(waiting)
                if failed.source is not None and newer.status is not None and newer.source is None:
                    newer = self._pending[torrent_id] = newer._replace(source=failed.source, progress_only=False)
                if failed.status is None or failed.remove_first:
                    # the failed delete must still happen before the newer write
                    self._pending[torrent_id] = newer._replace(
                        remove_first=newer.status is not None, progress_only=False
                    )
                elif newer.progress_only:
                    # the store never took the failed whole status: the newer one must go whole too
                    self._pending[torrent_id] = newer._replace(progress_only=False)

    def _flush_batch(
        self,
        batch: dict[UUID, Pending],
        narrow: dict[UUID, TorrentStatus],
        current: Callable[[UUID], TorrentStatus | None],
    ) -> tuple[list[TorrentStatus], list[UUID]]:
        """Deletes first (a re-added torrent loses its old jobs), then upserts, then progress, in chunks.

        Returns the statuses upserted whole and the ids removed. Each
        progress-only status leaves ``narrow`` as the store reads it, before
        the store's round trip (see :meth:`RuntimeStore.prepare_progress`).
        """
        started = time.perf_counter()
        removals: list[UUID] = []
        whole: list[TorrentStatus] = []
        sources: list[StoredSource] = []
        rows = len(batch) + len(narrow)
        for torrent_id, pending in batch.items():
            if pending.status is None or pending.remove_first:
                removals.append(torrent_id)
            if pending.status is not None:
                whole.append(pending.status)
                if pending.source is not None:
                    sources.append(pending.source)
        for ids in _chunks(removals):
            self._store.remove_torrents(ids)
        for statuses in _chunks(whole):
            self._store.upsert_torrents(statuses)
        for chunk in _chunks(sources):
            self._store.save_torrent_sources(chunk)  # after the statuses: a store keeps sources of stored torrents
        for _ in range(0, len(narrow), MAX_BATCH):
            self._store.prepare_progress(_handed_over(narrow, MAX_BATCH), current)()
        elapsed = time.perf_counter() - started
        self._metrics.inc("revaer_flushes_total")
        self._metrics.inc("revaer_rows_flushed_total", rows)
        self._metrics.inc("revaer_flush_duration_seconds_total", elapsed)
        self._metrics.set("revaer_last_flush_duration_seconds", elapsed)
        return whole, removals

    def flush(self, timeout: float) -> bool:
        """Write everything marked so far now; ``True`` once it is all in the store.

        The writer keeps running; used before the engine saves resume data,
        which a store accepts only for torrents it already holds.
        """
        end = time.monotonic() + timeout
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            while self._pending or self._resume or self._inflight:
                remaining = end - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._cond.wait(remaining)
        return True

    # -- shutdown -------------------------------------------------------------------------------

    def close(self, deadline: float = 10.0) -> DrainReport:
        """Stop the thread, then write what is left, retrying until ``deadline`` seconds pass.

        The deadline covers the wait for a flush in progress too. A flush still
        running at the deadline is not raced by another: what is buffered is
        reported unwritten.
        """
        end = time.monotonic() + deadline
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline))
        busy = self._thread is not None and self._thread.is_alive()
        if busy:
            log.error("a runtime store flush was still running at the shutdown deadline")
        while not busy:
            with self._cond:
                batch, self._pending, ticket = self._pending, {}, self._ticket
                resume, self._resume = self._resume, {}
            if not (batch or resume) or self._flush_or_keep(batch, resume):
                with self._cond:
                    self._written = max(self._written, ticket)
                    self._cond.notify_all()
                break
            delay = self._backoff.delay(self._failures, self._rng)
            if time.monotonic() + delay >= end:
                break
            time.sleep(delay)
        with self._cond:
            unwritten = tuple(self._pending)
            resume_unwritten = tuple(self._resume)
        if unwritten:
            log.error(
                "shutdown deadline passed with %d torrent(s) not written to the runtime store: %s",
                len(unwritten),
                _ids_for_log(list(unwritten)),
            )
        if resume_unwritten:
            log.error(
                "shutdown deadline passed with resume data of %d torrent(s) unwritten (older data is used): %s",
                len(resume_unwritten),
                _ids_for_log(list(resume_unwritten)),
            )
        return DrainReport(unwritten=unwritten, resume_unwritten=resume_unwritten)


def _split(batch: dict[UUID, Entry]) -> tuple[dict[UUID, Pending], dict[UUID, TorrentStatus]]:
    """Take the entries written whole or removed out of ``batch``, left with the statuses of the progress-only ones.

    In place: the progress-only entries are nearly all of them, and putting
    each into a dict of its own would hash its UUID, a Python call.
    """
    rest: dict[UUID, Pending] = {}
    for torrent_id, entry in batch.items():
        if isinstance(entry, TorrentStatus):
            continue
        if entry.progress_only and entry.status is not None:  # such an entry carries nothing but its status
            batch[torrent_id] = entry.status  # a value replaced, no key added: the iteration goes on
        else:
            rest[torrent_id] = entry
    for torrent_id in rest:
        del batch[torrent_id]
    return rest, cast(dict[UUID, TorrentStatus], batch)


def _handed_over(narrow: dict[UUID, TorrentStatus], count: int) -> Iterator[TorrentStatus]:
    """Up to ``count`` statuses, each taken out of ``narrow`` as it is handed over: the reader holds the last one.

    ``popitem``, not ``pop``: it hashes no UUID.
    """
    take = narrow.popitem
    for _ in range(min(count, len(narrow))):
        yield take()[1]


def _chunks(items: Sequence[T], size: int = MAX_BATCH) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
