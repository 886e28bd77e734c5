"""FsOps job transitions to the JobStore, in order per torrent, surviving a store that fails.

A transition is written at once from the job's own worker thread. If the store
fails, the transition is queued behind any earlier one of the same torrent, a
warning names the torrent, health component ``runtime_store`` turns degraded,
and a background thread retries with exponential backoff and jitter; health
recovers once every queued transition has landed. The job itself never fails
because of the store.

A write whose acknowledgement was lost (the store applied it, then the
connection dropped) must not land twice: every transition carries a
timestamp unique per torrent (bumped by a microsecond when the clock has not
moved), and before it re-sends a transition that was already tried once the
recorder reads the job's history and treats an entry with the same event and
timestamp as proof that it landed. A backend that stores coarser timestamps
than microseconds defeats the check; the cost is then a duplicated history
row, never a lost one.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import attrs

from revaer_core.backoff import Backoff
from revaer_core.health import RUNTIME_STORE, HealthBoard
from revaer_core.jobs import FsJob, JobEvent, JobTransition, TransferMode, TransitionRefused
from revaer_core.logthrottle import LogThrottle
from revaer_core.redact import redact
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

#: The throttle key of failing job writes: one warning per interval, however many jobs fail.
JOB_WRITE_FAULT = "FsOps job write"


@attrs.define
class _Pending:
    transition: JobTransition
    tries: int = 0  #: sends so far; after one, it may have landed without our knowing


class JobRecorder:
    """Records job transitions through ``store``; see the module docstring for the failure rules."""

    def __init__(
        self,
        store: RuntimeStore,
        health: HealthBoard,
        *,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        tracked: Callable[[UUID], bool] | None = None,
    ) -> None:
        """:param tracked: whether a torrent is still in the catalog: a failed write for a torrent
        removed since is dropped, not retried for ever (its job rows go with the torrent anyway)."""
        self._store = store
        self._health = health
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._cond = threading.Condition()
        self._queues: dict[UUID, collections.deque[_Pending]] = {}
        self._busy: set[UUID] = set()  #: torrents whose head transition is being sent right now
        self._last_at: dict[UUID, datetime] = {}
        self._failures = 0
        self._retry_at = 0.0
        self._degraded = False
        self._closed = False
        self._throttle = LogThrottle(log)
        self._thread: threading.Thread | None = None
        self._tracked = tracked

    # -- transitions ---------------------------------------------------------------------

    def _at(self, torrent_id: UUID) -> datetime:
        """Now, but strictly after this torrent's previous transition (the landed-check relies on it)."""
        with self._cond:
            at = datetime.now(UTC)
            last = self._last_at.get(torrent_id)
            if last is not None and at <= last:
                at = last + timedelta(microseconds=1)
            if len(self._last_at) > 10_000:
                self._last_at.clear()
            self._last_at[torrent_id] = at
            return at

    def started(self, torrent_id: UUID, source: str) -> FsJob | None:
        return self.record(JobTransition(torrent_id, JobEvent.STARTED, self._at(torrent_id), source=source))

    def completed(self, torrent_id: UUID, source: str, destination: str, mode: TransferMode) -> FsJob | None:
        return self.record(
            JobTransition(
                torrent_id,
                JobEvent.COMPLETED,
                self._at(torrent_id),
                source=source,
                destination=destination,
                transfer_mode=mode,
            )
        )

    def failed(self, torrent_id: UUID, error: str) -> FsJob | None:
        return self.record(JobTransition(torrent_id, JobEvent.FAILED, self._at(torrent_id), detail=error))

    def skipped(self, torrent_id: UUID, source: str, reason: str) -> FsJob | None:
        return self.record(
            JobTransition(torrent_id, JobEvent.SKIPPED, self._at(torrent_id), source=source, detail=reason)
        )

    def retry(self, torrent_id: UUID) -> FsJob | None:
        """Reopen a failed job; :class:`TransitionRefused` when the store says it is not failed.

        When the store is down the retry is queued like any transition and the
        refusal, if any, is only logged when it lands.
        """
        return self.record(JobTransition(torrent_id, JobEvent.RETRY, self._at(torrent_id)), raise_refused=True)

    def record(self, transition: JobTransition, *, raise_refused: bool = False) -> FsJob | None:
        """Write ``transition`` now, or queue it behind this torrent's earlier ones.

        :returns: the job as the store now holds it; ``None`` when there is no store or the write was queued.
        """
        torrent_id = transition.torrent_id
        pending = _Pending(transition)
        with self._cond:
            queue = self._queues.setdefault(torrent_id, collections.deque())
            queue.append(pending)
            if len(queue) > 1 or torrent_id in self._busy or self._closed:
                self._wake()
                return None
            self._busy.add(torrent_id)
        try:
            job = self._send(pending)
        except TransitionRefused as exc:
            self._done(torrent_id, succeeded=True)
            if raise_refused:
                raise
            log.warning("FsOps job of torrent %s: store refused %s: %s", torrent_id, transition.event, exc)
            return None
        except Exception as exc:
            self._failed(torrent_id, pending, exc)
            return None
        self._done(torrent_id, succeeded=True)
        return job

    # -- sending ------------------------------------------------------------------------------

    def _send(self, pending: _Pending) -> FsJob | None:
        """Apply the transition in the store unless an earlier try already landed it."""
        t = pending.transition
        if pending.tries and self._landed(t):
            log.info("FsOps job of torrent %s: %s had landed before its retry; not sent again", t.torrent_id, t.event)
            return self._store.get_job(t.torrent_id)
        pending.tries += 1
        return self._store.record_job_transition(t)

    def _landed(self, t: JobTransition) -> bool:
        return any(e.event is t.event and e.at == t.at for e in reversed(self._store.job_history(t.torrent_id)))

    def _done(self, torrent_id: UUID, *, succeeded: bool) -> None:
        """Pop the head of ``torrent_id``'s queue after it landed (or was refused)."""
        recover = False
        with self._cond:
            queue = self._queues[torrent_id]
            queue.popleft()
            self._busy.discard(torrent_id)
            if not queue:
                del self._queues[torrent_id]
            else:
                self._wake()
            if succeeded:
                self._failures = 0
                self._retry_at = 0.0
            if self._degraded and not self._queues:
                self._degraded, recover = False, True
            self._cond.notify_all()
        if recover:
            self._throttle.recovered(
                JOB_WRITE_FAULT, "FsOps job writes reach the store again; every queued transition landed"
            )
            self._health.recover(RUNTIME_STORE, source="fsops_jobs")

    def _failed(self, torrent_id: UUID, pending: _Pending, exc: Exception) -> None:
        reason = redact(f"{type(exc).__name__}: {exc}")
        if self._tracked is not None and not self._tracked(torrent_id):
            self._forget(torrent_id, reason)
            return
        with self._cond:
            self._busy.discard(torrent_id)
            self._failures += 1
            delay = self._backoff.delay(self._failures, self._rng)
            self._retry_at = time.monotonic() + delay
            self._degraded = True
            self._ensure_thread()
            self._cond.notify_all()
        self._throttle.failure(
            JOB_WRITE_FAULT,
            "FsOps job of torrent %s: store write of %s failed (%s); queued, retrying in %.2f s",
            torrent_id,
            pending.transition.event,
            reason,
            delay,
        )
        self._health.degrade(RUNTIME_STORE, f"FsOps job writes failing: {reason}", source="fsops_jobs")

    def _forget(self, torrent_id: UUID, reason: str) -> None:
        """Drop every queued transition of a torrent removed from the catalog."""
        recover = False
        with self._cond:
            dropped = self._queues.pop(torrent_id, collections.deque())
            self._busy.discard(torrent_id)
            if self._degraded and not self._queues:
                self._degraded, recover = False, True
            self._cond.notify_all()
        log.warning(
            "FsOps job of torrent %s: the torrent was removed; %d queued transition(s) dropped (last failure: %s)",
            torrent_id,
            len(dropped),
            reason,
        )
        if recover:
            self._throttle.recovered(JOB_WRITE_FAULT, "FsOps job writes: nothing left queued")
            self._health.recover(RUNTIME_STORE, source="fsops_jobs")

    # -- background retries ----------------------------------------------------------------------

    def _wake(self) -> None:
        self._ensure_thread()
        self._cond.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="revaer-fsops-recorder", daemon=True)
            self._thread.start()

    def _next(self) -> UUID | None:
        """A torrent with a queued transition nobody is sending; waits for one or for the backoff."""
        with self._cond:
            while True:
                ready = [t for t in self._queues if t not in self._busy]
                wait = self._retry_at - time.monotonic()
                if self._closed and (not ready or wait > 0):
                    return None
                if ready and wait <= 0:
                    self._busy.add(ready[0])
                    return ready[0]
                self._cond.wait(timeout=wait if ready else None)

    def _loop(self) -> None:
        while (torrent_id := self._next()) is not None:
            with self._cond:
                pending = self._queues[torrent_id][0]
            try:
                self._send(pending)
            except TransitionRefused as exc:
                log.warning(
                    "FsOps job of torrent %s: store refused queued %s: %s", torrent_id, pending.transition.event, exc
                )
                self._done(torrent_id, succeeded=True)
            except Exception as exc:
                self._failed(torrent_id, pending, exc)
            else:
                self._done(torrent_id, succeeded=True)

    # -- draining ---------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Transitions not yet in the store."""
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued transition landed; ``False`` if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queues:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.05))
            return True

    def close(self, deadline: float) -> list[JobTransition]:
        """Keep retrying for up to ``deadline`` seconds, then stop; returns what never landed.

        A second call waits no more: it reports the same leftovers.
        """
        with self._cond:
            if self._closed:
                return [p.transition for q in self._queues.values() for p in q]
        self.wait_idle(deadline)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            lost = [p.transition for q in self._queues.values() for p in q]
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, self._backoff.maximum))
        for t in lost:
            log.error("FsOps job of torrent %s: %s never reached the store before shutdown", t.torrent_id, t.event)
        return lost
