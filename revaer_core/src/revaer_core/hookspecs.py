"""Hook specifications for runtime-store plugins.

A runtime-store plugin implements some or all of these hooks with
``@revaer_core.hookimpl``. Revaer registers exactly one store plugin, the one
the ``runtime.backend`` setting names. Every hook that returns a value is
``firstresult`` (it stops at the first non-None result), so the value the
plugin returns is the value the caller gets; hooks that return ``None`` are
plain hooks, called for their effect.

Hooks are grouped in four namespaces:

- :class:`TorrentStore` keeps torrent statuses (and, optionally, engine resume data and
  each torrent's source);
- :class:`JobStore` keeps FsOps jobs and their history;
- :class:`StoreLifecycle` opens, checks and closes the backend;
- :class:`RuntimeCommands` adds the backend's own operator commands to ``revaer runtime``.

All hooks are plain synchronous functions; Revaer calls them from worker
threads, never from an event loop, and may call them from several threads at
once. pluggy passes arguments by keyword and lets an implementation accept
fewer arguments than its spec, so a backend takes only what it needs.

A backend signals a passing fault (server down, timeout) by raising
:class:`revaer_core.StoreUnavailable` or letting its driver's error through: the
caller keeps the write and retries it. A backend must never partially apply a
write and then raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pluggy

from revaer_core.jobs import FsJob, JobHistoryEntry, JobStatus, JobTransition
from revaer_core.query import JobQuery, Page, TorrentQuery
from revaer_core.sources import StoredSource
from revaer_core.status import TorrentStatus
from revaer_core.storetypes import StoreHealth, StoreRole

if TYPE_CHECKING:
    import click

PROJECT = "revaer"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class StoreLifecycle:
    """Opening, checking and closing a backend."""

    # -------------------------------------------------------------------------
    # configuration
    # -------------------------------------------------------------------------

    @hookspec
    def store_configure(self, options: Mapping[str, Any], data_dir: Path, role: StoreRole) -> None:
        """Open the backend before any other store hook is called.

        :param options: The ``[runtime.<backend>]`` table of the settings file, as
            parsed TOML (possibly empty). Reject an unknown or ill-typed key by
            raising :class:`revaer_core.ConfigError` naming it, e.g.
            ``ConfigError("runtime.postgres.pool_size", "expected an integer")``.
        :param data_dir: A directory this backend may keep files in (it exists).
        :param role: ``DAEMON`` for ``revaer run``, whose orchestrator and FsOps
            write all the time (take any exclusive lock here); ``CLIENT`` for the
            CLI and a stand-alone API, which read and also write alongside a
            daemon: ``revaer fsops retry`` records a job transition as a client.
        :returns: Nothing; raise :class:`revaer_core.ConfigError` (bad options) or
            :class:`revaer_core.StoreUnavailable` (the backend cannot be reached).

        Never put a password in a message: Revaer redacts DSNs in its logs, but
        an exception text is the backend's own.
        """

    @hookspec(firstresult=True)
    def store_capabilities(self) -> Iterable[str]:
        """Declare optional abilities, as strings from :class:`revaer_core.Capability`.

        The conformance suite runs the tests of a capability only for backends
        that declare it. Stops at the first non-None result.

        :returns: The capabilities, e.g. ``{"durable", "resume_data"}``;
            strings that name no capability are ignored.
        """

    @hookspec(firstresult=True)
    def store_health(self) -> StoreHealth:
        """Report whether the backend can serve reads and writes right now.

        Called by ``revaer runtime status`` and the health endpoint; keep it cheap
        (one round trip at most) and never raise, not even after ``store_close``:
        report the fault instead. Stops at the first non-None result.

        :returns: A :class:`revaer_core.StoreHealth`; put facts an operator wants
            (schema revision, server version) in its ``facts`` mapping.
        """

    @hookspec
    def store_close(self) -> None:
        """Release connections, locks and threads.

        Called once; only ``store_health`` may follow it (and must not raise).

        :returns: Nothing.
        """


class TorrentStore:
    """Torrent statuses: what the orchestrator hydrates from and persists to."""

    # -------------------------------------------------------------------------
    # writes
    # -------------------------------------------------------------------------

    @hookspec(firstresult=True)
    def upsert_torrents(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID] | None:
        """Insert or replace each status, keyed by its ``id``.

        The batch is the unit of work: store it in as few round trips as the
        backend allows. Upserting the same status twice leaves the same row.
        A status the backend cannot store as given (a NUL byte in a name, a
        number beyond its range) must not cost the rest of the batch: store it
        sanitised if you can (the rest of its fields kept), or else leave it
        out; either way log a warning with its torrent id and return its id.
        Replacing a status keeps what hangs off the torrent: its job, job
        history, resume data and source. Stops at the first non-None result.

        :param statuses: At most one status per torrent id.
        :returns: Ids of the statuses that were not stored exactly as given
            (sanitised or left out), or ``None`` (or nothing) when all were.
        """

    @hookspec
    def remove_torrents(self, torrent_ids: Sequence[UUID]) -> None:
        """Delete the torrents with these ids, with their jobs, job history, resume data and sources.

        Removing an id that is not stored is not an error.

        :param torrent_ids: Ids to delete, each at most once.
        :returns: Nothing.
        """

    @hookspec(firstresult=True)
    def update_progress(self, statuses: Sequence[TorrentStatus]) -> Sequence[UUID]:
        """Store only the changing part of each status: progress, rates and ``last_updated``.

        Optional: the fast path for the most frequent write. Revaer calls it
        for torrents whose only change since their last upsert is progress, so
        every other field in the row is already what ``statuses`` say. Without
        this hook Revaer upserts those statuses whole. Stops at the first
        non-None result.

        :param statuses: At most one status per torrent id.
        :returns: Ids of the statuses whose torrent is not stored (an empty
            sequence when every one was); Revaer upserts those whole. Sanitise
            and report out-of-range numbers as ``upsert_torrents`` does (log a
            warning with the torrent id).
        """

    @hookspec(firstresult=True)
    def prepare_progress(self, statuses: Iterable[TorrentStatus]) -> Callable[[], Sequence[UUID]]:
        """``update_progress`` in two steps: encode ``statuses`` now, store them when the returned write is called.

        Optional; Revaer's writer prefers it to ``update_progress``. It hands
        the statuses over one at a time and lets each go as soon as the next
        is asked for, so the flush holds none of them while it waits on the
        backend: a status the catalog replaces meanwhile is freed at once
        instead of piling up for the garbage collector, which runs on the
        event path. So read each status once, keep only what you will write
        (bytes, numbers, strings: objects the collector does not track) and
        do no I/O until the write is called. A backend with this hook needs
        no ``update_progress``: Revaer calls ``prepare_progress(statuses)()``
        in its place. Stops at the first non-None result.

        :param statuses: At most one status per torrent id; an iterator, to be read once before returning.
        :returns: The write, called at most once from the same thread: it stores the
            encoded progress and returns what ``update_progress`` returns (the ids
            of the torrents not stored), or raises as a failed write does.
        """

    @hookspec
    def save_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        """Keep the engine's resume data for a stored torrent (capability ``resume_data``).

        Resume data is opaque bytes (about 12 KB for libtorrent). Keep it apart
        from the status: ``load_torrents`` must not read it. Data for a
        torrent that is not stored is dropped silently.

        :param torrent_id: The torrent the data belongs to.
        :param data: The engine's bytes, replacing any saved before.
        :returns: Nothing.
        """

    @hookspec
    def save_resume_data_batch(self, items: Sequence[tuple[UUID, bytes]]) -> None:
        """Keep the engine's resume data of many stored torrents at once (capability ``resume_data``).

        Optional: Revaer's writer flushes resume data in batches, right after
        the statuses of the same flush, and calls ``save_resume_data`` once per
        item when no plugin implements this hook. Store the batch in as few
        round trips as the backend allows, and atomically: on an error Revaer
        retries the whole batch. Data for a torrent that is not stored is
        dropped silently, as ``save_resume_data`` does.

        :param items: ``(torrent id, resume data)`` pairs, at most one per torrent id.
        :returns: Nothing; raise to have the batch retried.
        """

    @hookspec
    def save_torrent_sources(self, sources: Sequence[StoredSource]) -> None:
        """Keep each torrent's source, replacing any stored before (capability ``sources``).

        Revaer calls this right after upserting the torrents' statuses, and
        acknowledges an add only once it returns: a source is what brings a
        torrent back after a crash when the engine has no resume data for it.
        Keep sources apart from statuses (``load_torrents`` must not read
        them) and drop them with their torrent in ``remove_torrents``. A
        source for a torrent that is not stored is dropped silently.

        :param sources: At most one per torrent id; metainfo can be a few MiB.
        :returns: Nothing.
        """

    # -------------------------------------------------------------------------
    # reads
    # -------------------------------------------------------------------------

    @hookspec(firstresult=True)
    def load_torrents(self) -> Iterable[TorrentStatus]:
        """Every stored status, in any order: the catalog hydrates from this at boot.

        Each status must equal, field for field, the one last upserted
        (sanitised rows excepted). This reads the whole store: make it cheap
        per row. Stops at the first non-None result.

        :returns: The statuses (any iterable; Revaer reads it once).
        """

    @hookspec(firstresult=True)
    def get_torrent(self, torrent_id: UUID) -> TorrentStatus | None:
        """The stored status of one torrent (stops at the first non-None result).

        :param torrent_id: The torrent to read.
        :returns: Its status, or ``None`` if it is not stored.
        """

    @hookspec(firstresult=True)
    def list_torrents(self, query: TorrentQuery) -> Page[TorrentStatus]:
        """One page of stored statuses matching ``query``.

        Order by ``query.key`` (descending when ``query.descending``), start
        strictly after ``query.after_key()``, and return at most ``query.limit``
        rows; set ``next_cursor`` (``query.cursor_of(last_row).encode()``) when
        more rows follow. :func:`revaer_core.page_of` does the last step.
        Names sort by code point (PostgreSQL: ``COLLATE "C"``). Stops at the
        first non-None result.

        :param query: Filters, order, page size and the cursor to resume after.
        :returns: The page.
        """

    @hookspec(firstresult=True)
    def load_resume_data(self) -> Mapping[UUID, bytes]:
        """All stored resume data by torrent id (capability ``resume_data``).

        Stops at the first non-None result.

        :returns: Torrent id to the bytes last saved for it.
        """

    @hookspec(firstresult=True)
    def load_torrent_sources(self) -> Mapping[UUID, StoredSource]:
        """Every stored source by torrent id, each equal to the one last saved (capability ``sources``).

        Stops at the first non-None result.

        :returns: Torrent id to its source.
        """


class JobStore:
    """FsOps jobs: the current job of each torrent and the history of its transitions."""

    @hookspec(firstresult=True)
    def record_job_transition(self, transition: JobTransition) -> FsJob:
        """Apply ``transition`` to the torrent's job and append it to the job's history.

        Compute the new job with :func:`revaer_core.jobs.apply_transition`, so
        that every backend follows the same rules, and store the job and one
        history row (:func:`revaer_core.jobs.history_entry`) atomically: no
        reader may see one without the other. History ``seq`` numbers count
        1, 2, 3... per torrent. Transitions of one torrent may arrive from
        several threads and processes at once: each must see the job the
        previous one left. Stops at the first non-None result.

        :param transition: What happened to the torrent's job, and when.
        :raises revaer_core.TransitionRefused: When ``apply_transition`` refuses
            (a start on a finished job, a retry of a job that has not failed);
            record nothing then.
        :returns: The job as it now stands.
        """

    @hookspec(firstresult=True)
    def get_job(self, torrent_id: UUID) -> FsJob | None:
        """The current job of a torrent (stops at the first non-None result).

        :param torrent_id: The torrent whose job to read.
        :returns: The job, or ``None`` if it never had one.
        """

    @hookspec(firstresult=True)
    def list_jobs(self, query: JobQuery) -> Page[FsJob]:
        """One page of jobs matching ``query``, ordered by ``JobQuery.key``.

        Paging works as in ``list_torrents``. Stops at the first non-None result.

        :param query: Filters, page size and the cursor to resume after.
        :returns: The page.
        """

    @hookspec(firstresult=True)
    def count_jobs(self) -> Mapping[JobStatus, int]:
        """How many jobs are in each status, counted in the storage: one ``/metrics`` scrape, one query.

        Optional: without it Revaer pages through ``list_jobs`` and counts
        what it reads. Stops at the first non-None result.

        :returns: Each status to its number of jobs; a status with no job
            may be left out.
        """

    @hookspec(firstresult=True)
    def job_history(self, torrent_id: UUID) -> Sequence[JobHistoryEntry]:
        """Every recorded transition of a torrent's job, oldest first.

        Stops at the first non-None result.

        :param torrent_id: The torrent whose job history to read.
        :returns: The entries in ``seq`` order; empty if it never had a job.
        """


class RuntimeCommands:
    """Operator commands a backend brings along (schema migrations, say)."""

    @hookspec(firstresult=True)
    def runtime_commands(self, options: Mapping[str, Any], data_dir: Path) -> Iterable[click.Command]:
        """Click commands to list under ``revaer runtime`` while this backend is selected.

        Revaer asks for them without configuring the store (``store_configure``
        is not called), so a command such as ``migrate`` works on a schema the
        store itself would refuse to open. Everything a command needs comes in
        here: build the commands around ``options`` and ``data_dir`` (a closure),
        and parse ``options`` only when a command runs, so that ``--help`` works
        with bad settings. A name that clashes with a built-in ``revaer
        runtime`` command is ignored. Report failure by raising
        :class:`revaer_core.RevaerError` (one line, its ``exit_code``). Stops at
        the first non-None result.

        :param options: The ``[runtime.<backend>]`` table, exactly as
            ``store_configure`` would get it.
        :param data_dir: The data directory ``store_configure`` would get; it
            may not exist yet.
        :returns: The commands, each with its name set.
        """


#: The namespaces Revaer registers, in the order this module defines them (the "spec order").
NAMESPACES: tuple[type, ...] = (StoreLifecycle, TorrentStore, JobStore, RuntimeCommands)
