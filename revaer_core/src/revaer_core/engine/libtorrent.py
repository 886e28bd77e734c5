"""The libtorrent adapter: one session, one alert thread, Revaer events out.

libtorrent reports everything through alerts. A single background thread waits
for them, turns each into the events of :mod:`revaer_core.events`, asks for
status updates on a timer (progress), and saves resume data on two others:
torrents with newly verified pieces at the store's flush cadence (so a crash
costs at most about one flush of verified progress), and torrents whose other
choices changed every ``resume_save_interval_s``. Caller threads only post
requests to the session, which libtorrent makes thread-safe; no caller ever
waits on the alert thread. Resume data is handed to the store with
``submit_resume_data``, one batch per round of alerts: in a daemon that is the
write-behind writer, so the alert thread never waits on the database.

The libtorrent wheel ships type stubs; where they are narrower than what the
binding accepts, the cast is here, and callers see only Revaer values.

Requires the ``libtorrent`` extra: ``pip install 'revaer-core[libtorrent]'``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import attrs
import libtorrent as lt

from revaer_core.engine import (
    AddOptions,
    Publish,
    RestoredTorrent,
    RestoreRequest,
    TorrentSource,
    plan_from_store,
    torrent_id_for,
)
from revaer_core.errors import InvalidInput
from revaer_core.events import (
    FilesDiscovered,
    ProgressUpdated,
    StateChanged,
    TorrentAdded,
    TorrentCompleted,
    TorrentRemoved,
)
from revaer_core.logthrottle import LogThrottle
from revaer_core.settings import EngineSettings
from revaer_core.status import FileEntry, TorrentState
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

#: libtorrent's state names by value (alerts carry the value).
_NATIVE_NAMES: Mapping[int, str] = {int(v): k for k, v in lt.torrent_status.states.names.items()}

#: libtorrent's torrent states, as Revaer reports them. A paused torrent is
#: ``stopped`` and a torrent with an error ``failed``, whatever its lt state.
STATE_MAP: Mapping[str, TorrentState] = {
    "queued_for_checking": TorrentState.QUEUED,
    "checking_files": TorrentState.QUEUED,
    "checking_resume_data": TorrentState.QUEUED,
    "allocating": TorrentState.QUEUED,
    "downloading_metadata": TorrentState.FETCHING_METADATA,
    "downloading": TorrentState.DOWNLOADING,
    "finished": TorrentState.SEEDING,  # every wanted file is done; the rest is deselected
    "seeding": TorrentState.SEEDING,
}

#: Alerts the adapter reads; everything else is never generated. ``piece_progress`` brings
#: ``piece_finished``: a piece passed its hash check, so the resume data is worth saving.
_ALERT_MASK = (
    lt.alert_category.status | lt.alert_category.error | lt.alert_category.storage | lt.alert_category.piece_progress
)

#: Flags every torrent runs with. Not auto-managed: a pause by the user must stick,
#: and a torrent must not sit paused in libtorrent's queue while we call it active.
_BASE_FLAGS = lt.torrent_flags.update_subscribe | lt.torrent_flags.apply_ip_filter

_MIB = 1024 * 1024
#: Incoming peer connections the kernel queues until libtorrent accepts them (``listen()``'s backlog; the kernel
#: caps it at ``net.core.somaxconn``). libtorrent's 5 is for a handful of torrents: peers of a thousand connecting
#: at once overflow it, and the kernel drops each connection past it (the peer tries again seconds later).
LISTEN_BACKLOG = 1024
CLOSE_TIMEOUT_S = 10.0  #: what :meth:`LibtorrentEngine.close` may take when not told
#: Part of a close's time kept for stopping the session once the resume data is in.
SESSION_STOP_SHARE = 0.2
#: libtorrent's ``if_counters_changed`` save flag (the bindings name only ``only_if_modified``, the union of
#: the change categories): its byte counters and its active and seeding time, which tick for every torrent
#: that runs. A restored seed counts as modified by them alone within a second of its start.
_IF_COUNTERS_CHANGED = 1 << 3
#: A save only if what the torrent has, wants or is changed: every category but the counters.
_IF_CONTENT_CHANGED = lt.torrent_handle.only_if_modified & ~_IF_COUNTERS_CHANGED
#: How often torrents with new verified pieces save resume data when not told (the default flush interval).
PIECE_SAVE_INTERVAL_S = 0.25
#: Torrents posted to libtorrent at once at a restore; their add alerts must fit in the alert queue.
RESTORE_BATCH = 1000
#: libtorrent's alert queue: a restore's batch of add alerts and first states, with room to spare.
ALERT_QUEUE_SIZE = 100_000
#: libtorrent states a restored torrent passes through while it reads its own resume data back.
_RESTORE_STATES = frozenset({"checking_resume_data", "queued_for_checking"})


def _native(state: int) -> str:
    return _NATIVE_NAMES.get(int(state), str(state))


def _mapped(state: int) -> TorrentState:
    return STATE_MAP.get(_native(state), TorrentState.QUEUED)


def _hex_of(hashes: lt.info_hash_t) -> str:
    """The info-hash Revaer names a torrent by: the v1 hash when there is one, else the v2 hash."""
    return str(hashes.v1) if hashes.has_v1() else str(hashes.v2)


def _id_of(hashes: lt.info_hash_t) -> uuid.UUID:
    """Revaer's id of an info-hash pair (see :func:`_hex_of`)."""
    return torrent_id_for(_hex_of(hashes))


def _limit(value: int | None) -> int:
    """A Revaer rate limit (``None``: none) as libtorrent's (-1: none)."""
    return -1 if value is None else value


def _apply_options(params: lt.add_torrent_params, options: AddOptions) -> None:
    """Set the user's choices on ``params`` before the torrent enters the session."""
    params.save_path = str(options.save_path)
    flags = (params.flags & ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)) | _BASE_FLAGS
    if options.paused:
        flags |= lt.torrent_flags.paused
    if options.sequential:
        flags |= lt.torrent_flags.sequential_download
    else:
        flags &= ~lt.torrent_flags.sequential_download
    params.flags = flags
    if options.file_priorities:
        params.file_priorities = list(options.file_priorities)
    params.download_limit = _limit(options.download_limit)
    params.upload_limit = _limit(options.upload_limit)


def _params_for(source: TorrentSource) -> lt.add_torrent_params:
    """``add_torrent_params`` for ``source``; a source libtorrent cannot read is the caller's mistake."""
    try:
        if source.torrent_file is not None:
            return lt.load_torrent_file(str(source.torrent_file))
        if source.metainfo is not None:
            return lt.load_torrent_buffer(source.metainfo)
        return lt.parse_magnet_uri(str(source.magnet))
    except RuntimeError as exc:
        raise InvalidInput(f"not a torrent libtorrent can read: {exc}") from None


def _resumed(data: bytes, params: lt.add_torrent_params, torrent_id: uuid.UUID) -> lt.add_torrent_params:
    """``params`` with the progress of resume ``data``; data that is unreadable or of another torrent is refused."""
    try:
        resumed = lt.read_resume_data(data)
    except RuntimeError as exc:
        raise InvalidInput(f"resume data libtorrent cannot read: {exc}") from None
    if _id_of(_hashes_of(resumed)) != torrent_id:
        raise InvalidInput("the resume data is of another torrent than the metainfo")
    resumed.ti = params.ti
    return resumed


def _has_all(params: lt.add_torrent_params, info: lt.torrent_info) -> bool:
    """Whether the resume data in ``params`` has every piece (its bitfield is padded to whole bytes)."""
    pieces = info.num_pieces()
    have = params.have_pieces
    return len(have) >= pieces and all(have[:pieces])


def _is_finished(params: lt.add_torrent_params, info: lt.torrent_info, progress: tuple[int, int] | None) -> bool:
    """Whether resume data ``params`` has every wanted byte: what libtorrent then calls finished, and seeds.

    A torrent with a deselected file never has every piece, yet it is as done
    as it will be: it restores seeding, not downloading. ``progress`` is
    :func:`resumed_progress` of ``params``, which the restore also publishes.
    """
    if params.flags & lt.torrent_flags.seed_mode or _has_all(params, info):
        return True
    return progress is not None and progress[0] == progress[1]


def _hashes_of(params: lt.add_torrent_params) -> lt.info_hash_t:
    return params.ti.info_hashes() if params.ti is not None else params.info_hashes


def resumed_progress(params: lt.add_torrent_params) -> tuple[int, int] | None:
    """(verified wanted bytes, wanted bytes) that resume data ``params`` brings back; ``None`` without metadata.

    What libtorrent reports as ``total_wanted_done`` once it has read the resume
    data: the bytes of wanted files in pieces that passed their hash check
    (padding is never wanted). Counted per file over the pieces it spans, so a
    torrent of many pieces costs a few slices, not a loop over its pieces.
    """
    ti = params.ti
    if ti is None:
        return None
    have = [bool(b) for b in params.have_pieces]
    priorities = list(params.file_priorities)
    layout, piece = ti.layout(), ti.piece_length()
    done = total = 0
    for index in range(layout.num_files()):
        size = int(layout.file_size(index))
        wanted = (int(priorities[index]) if index < len(priorities) else 4) > 0
        if size == 0 or not wanted or layout.file_flags(index) & lt.file_storage.flag_pad_file:
            continue
        total += size
        start = int(layout.file_offset(index))
        end = start + size
        first, last = start // piece, (end - 1) // piece
        if first >= len(have):
            continue
        got = sum(have[first : last + 1]) * piece
        if have[first]:
            got -= start - first * piece
        if last < len(have) and have[last]:
            got -= (last + 1) * piece - end
        done += got
    return done, total


def create_metainfo(payload: Path, *, piece_size: int = 16 * 1024, creator: str = "revaer") -> bytes:
    """Bencoded metainfo (.torrent contents) of the file or directory ``payload``.

    Used by the loopback helpers to make torrents on the fly; small pieces keep
    a small payload spread over many pieces, as a real download is.
    """
    payload = payload.resolve()
    entries = lt.list_files(str(payload))
    if not entries:
        raise InvalidInput(f"nothing to put in a torrent at {payload}")
    creator_obj = lt.create_torrent(entries, piece_size)
    creator_obj.set_creator(creator)
    lt.set_piece_hashes(creator_obj, str(payload.parent))
    return bytes(lt.bencode(creator_obj.generate()))


def session_settings(
    settings: EngineSettings, overrides: Mapping[str, int | str | bool] | None = None
) -> lt.settings_pack:
    """The libtorrent ``settings_pack`` for ``settings``; ``overrides`` are libtorrent setting names."""
    pack: lt.settings_pack = {
        "listen_interfaces": settings.listen_interfaces,
        "enable_dht": settings.enable_dht,
        "enable_lsd": settings.enable_lsd,
        "enable_upnp": settings.enable_upnp,
        "enable_natpmp": settings.enable_natpmp,
        "connections_limit": settings.connections_limit,
        "alert_mask": _ALERT_MASK,
        "alert_queue_size": ALERT_QUEUE_SIZE,
        "listen_queue_size": LISTEN_BACKLOG,
        "user_agent": "Revaer/0.1 libtorrent/" + lt.__version__,
    }
    # overrides name settings at run time; libtorrent rejects unknown names itself
    return cast("lt.settings_pack", {**pack, **(overrides or {})})


@attrs.define
class _Torrent:
    """What the adapter tracks about one torrent in its session."""

    torrent_id: uuid.UUID
    handle: lt.torrent_handle
    restored: bool
    added_at: float  #: monotonic
    paused: bool = False
    failed: bool = False
    state: TorrentState | None = None  #: the last state published
    completed: bool = False  #: completion handled this run (published, or skipped for a restored seed)
    flushing: bool = False  #: finished; TorrentCompleted waits for libtorrent to write its cache to disk
    described: bool = False  #: restored with its metadata and complete: its add alert publishes nothing
    dirty: bool = False  #: resume data changed since the last save (a state, a choice, bytes moved)
    #: libtorrent has unsaved changes (``need_save_resume``), maybe only its ticking counters: saved only if
    #: libtorrent counts anything else as modified
    reported: bool = False
    traffic: tuple[int, int] | None = None  #: bytes uploaded and downloaded ever, at the last status
    pieces: bool = False  #: pieces passed their hash check since the last save
    wrote: bool = False  #: pieces passed their hash check this run: the shutdown save flushes them to disk first
    #: libtorrent has checked what the torrent was added with; until then a restore from resume data re-reads
    #: the pieces that resume data holds, each with a ``piece_finished_alert``, and none is new
    checked: bool = True
    native_states: list[str] = attrs.field(factory=list)
    progress: ProgressUpdated | None = None  #: the last progress published from a status; none repeats it


class LibtorrentEngine:
    """The Engine protocol on a libtorrent 2.x session.

    :param publish: where events go (``EventBus.publish``); called on the alert thread.
    :param store: the runtime store; resume data is saved to and restored from it.
    :param settings: the ``[engine]`` settings.
    :param session_overrides: extra libtorrent settings (``tick_interval`` for fast loopback tests, say).
    :param restore_from_store: with False, start() restores nothing and says nothing about it (a seeder).
    :param piece_save_interval_s: how often torrents with newly verified pieces save resume data
        (a daemon passes its flush interval: the blobs go through its writer at that cadence).
    """

    def __init__(
        self,
        publish: Publish,
        store: RuntimeStore,
        settings: EngineSettings | None = None,
        *,
        session_overrides: Mapping[str, int | str | bool] | None = None,
        restore_from_store: bool = True,
        piece_save_interval_s: float = PIECE_SAVE_INTERVAL_S,
    ) -> None:
        if piece_save_interval_s <= 0:
            raise ValueError(f"piece_save_interval_s must be > 0, got {piece_save_interval_s}")
        self._publish = publish
        self._piece_save_every = piece_save_interval_s
        self._store = store
        self.settings = settings or EngineSettings()
        self._overrides = dict(session_overrides or {})
        self._restore_from_store = restore_from_store
        self._session: lt.session | None = None
        self._lock = threading.RLock()
        self._by_id: dict[uuid.UUID, _Torrent] = {}
        self._by_handle: dict[lt.torrent_handle, _Torrent] = {}
        self._removing: dict[lt.torrent_handle, uuid.UUID] = {}
        self._saves_pending = 0
        self._resume_out: list[tuple[uuid.UUID, bytes]] = []  #: saved by libtorrent, not yet handed to the store
        self._awaiting: set[uuid.UUID] = set()  #: torrents whose shutdown save has not answered yet
        self._throttle = LogThrottle(log)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, plan: Sequence[RestoreRequest] | None = None) -> Sequence[RestoredTorrent]:
        """Open the session, restore the torrents of ``plan`` (else the store's), start the alert thread."""
        if self._session is not None:
            raise RuntimeError("engine already started")
        self._session = lt.session(lt.session_params(session_settings(self.settings, self._overrides)))
        restored: list[RestoredTorrent] = []
        if self._restore_from_store:
            if not self._store.persistent and plan is None:
                log.info("no runtime store selected: no torrents restored, the engine starts empty")
            else:
                plan = plan_from_store(self._store, self.settings.download_dir) if plan is None else plan
                restored = self._restore(self._session, plan)
        self._thread = threading.Thread(target=self._run, name="revaer-libtorrent", daemon=True)
        self._thread.start()
        # a session still running when the interpreter exits aborts the process: close it first
        atexit.register(self.close)
        return restored

    def _restore(self, session: lt.session, plan: Sequence[RestoreRequest]) -> list[RestoredTorrent]:
        """Add every torrent of ``plan`` with ``async_add_torrent``, :data:`RESTORE_BATCH` at a time.

        A synchronous add waits for libtorrent's network thread once per
        torrent; here a batch is posted at once and its ``add_torrent_alert``
        s are taken as they come. What each restored torrent is (its state,
        whether it is complete) is read from its parameters, so a restored
        torrent publishes no event unless libtorrent later says something new.
        """
        prepared: list[tuple[RestoreRequest, lt.add_torrent_params, bool]] = []
        from_source = 0
        for request in plan:
            found = self._restore_params(request)
            if found is not None:
                prepared.append((request, *found))
                from_source += found[1]
        restored: list[RestoredTorrent] = []
        for start in range(0, len(prepared), RESTORE_BATCH):
            restored += self._add_batch(session, prepared[start : start + RESTORE_BATCH])
        log.info(
            "restored %d of %d torrent(s) from the %s store (%d from their source, checking what is on disk)",
            len(restored),
            len(plan),
            self._store.backend or "given",
            from_source,
        )
        return restored

    def _add_batch(
        self, session: lt.session, batch: Sequence[tuple[RestoreRequest, lt.add_torrent_params, bool]]
    ) -> list[RestoredTorrent]:
        """Post ``batch``'s adds, then take alerts until each has its ``add_torrent_alert``.

        Alerts of torrents already added meanwhile (their first states) are
        dispatched as the alert thread would, in the order they came.
        """
        waiting: dict[str, tuple[RestoreRequest, lt.add_torrent_params, bool]] = {}
        for request, params, by_source in batch:
            waiting[_hex_of(_hashes_of(params))] = (request, params, by_source)
            session.async_add_torrent(params)
        restored: list[RestoredTorrent] = []
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while waiting and time.monotonic() < deadline:
            session.wait_for_alert(self.settings.alert_poll_ms)
            for alert in session.pop_alerts():
                if not isinstance(alert, lt.add_torrent_alert):
                    self._dispatch_safely(alert)
                    continue
                found = waiting.pop(_hex_of(_hashes_of(alert.params)), None)
                if found is None:
                    continue
                request, params, by_source = found
                if alert.error.value():
                    log.warning("torrent %s: libtorrent refused it at restore (%s); not restored",
                                request.torrent_id, alert.error.message())  # fmt: skip
                    continue
                progress = resumed_progress(params)  # counted over every file: once per torrent
                restored.append(self._restored(request.torrent_id, alert.handle, params, progress, by_source))
                if not by_source and progress is not None:
                    self._publish_resumed(request.torrent_id, progress)
        for request, _, _ in waiting.values():
            log.warning("torrent %s: libtorrent did not add it within %g s at restore; not restored",
                        request.torrent_id, CLOSE_TIMEOUT_S)  # fmt: skip
        return restored

    def _restored(
        self,
        torrent_id: uuid.UUID,
        handle: lt.torrent_handle,
        params: lt.add_torrent_params,
        progress: tuple[int, int] | None,
        by_source: bool,
    ) -> RestoredTorrent:
        """Track a restored torrent and say what it is, from what it was added with (and resumes ``progress`` of).

        A torrent whose metadata is known is described here, so its add alert
        publishes nothing: the store already holds its name, folder and files.
        One restored from its resume data saves none for the pieces that data
        brought back (a restart would otherwise save every torrent again at once);
        one restored from its source does, as libtorrent finds them on disk.
        """
        paused = bool(params.flags & lt.torrent_flags.paused)
        info = params.ti
        complete = info is not None and _is_finished(params, info, progress)
        if paused:
            state = TorrentState.STOPPED
        elif info is None:
            state = TorrentState.FETCHING_METADATA
        else:
            state = TorrentState.SEEDING if complete else TorrentState.DOWNLOADING
        torrent = self._track(torrent_id, handle, restored=True, paused=paused)
        with self._lock:
            torrent.state = state
            torrent.described = info is not None and complete
            torrent.completed = complete  # a restored seed completes no more this run
            torrent.checked = by_source
        name = info.name() if info is not None else params.name
        return RestoredTorrent(torrent_id=torrent_id, name=name or None, state=state, complete=complete)

    def _publish_resumed(self, torrent_id: uuid.UUID, progress: tuple[int, int]) -> None:
        """Publish the ``progress`` the resume data brings back, before the catalog is shown to anyone.

        The store's status may be newer than the resume data (a crash between
        the two writes); the catalog then shows what the engine resumes from,
        and from there on only grows, instead of showing the stored figure and
        falling back once libtorrent has read its resume data.
        """
        done, total = progress
        self._publish(ProgressUpdated(torrent_id=torrent_id, downloaded=done, total=total, download_bps=0))

    def _restore_params(self, request: RestoreRequest) -> tuple[lt.add_torrent_params, bool] | None:
        """Parameters from the resume data when it is readable and of this torrent, else from the source.

        The flag says the source was used: libtorrent checks the files on disk then.
        """
        params: lt.add_torrent_params | None = None
        by_source = False
        if request.resume_data is not None:
            try:
                params = lt.read_resume_data(request.resume_data)
            except RuntimeError as exc:
                log.warning("torrent %s: stored resume data is unreadable (%s)", request.torrent_id, exc)
            if params is not None and (actual := _id_of(_hashes_of(params))) != request.torrent_id:
                log.warning("torrent %s: stored resume data is for torrent %s", request.torrent_id, actual)
                params = None
        if params is None and request.source is not None:
            try:
                params = _params_for(request.source)
            except InvalidInput as exc:
                log.warning("torrent %s: stored source is unusable (%s)", request.torrent_id, exc)
                return None
            if (actual := _id_of(_hashes_of(params))) != request.torrent_id:
                log.warning("torrent %s: stored source is for torrent %s; not restored", request.torrent_id, actual)
                return None
            by_source = True
            if request.options is None:
                params.save_path = str(self.settings.download_dir)
        if params is None:
            log.warning("torrent %s: neither resume data nor a source to restore it from; not restored",
                        request.torrent_id)  # fmt: skip
            return None
        # keep a user's pause; drop libtorrent's queue management (see _BASE_FLAGS)
        params.flags = (params.flags & ~lt.torrent_flags.auto_managed) | _BASE_FLAGS
        if request.options is not None:
            _apply_options(params, request.options)
        return params, by_source

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> tuple[uuid.UUID, ...]:
        """Save the resume data that changed, then stop the session, all within ``timeout`` seconds.

        Every torrent is asked at once (``only_if_modified`` for those with
        nothing new since their last save, whose blob the store has or the
        writer holds); the alert thread collects the answers and ends once the
        last is in, and the round goes to the store in one batch. Returns the
        torrents whose resume data did not arrive in time (their older data is
        used at the next start).
        """
        if self._closed or self._session is None:
            self._closed = True
            return ()
        atexit.unregister(self.close)
        started = time.monotonic()
        end = started + max(0.0, timeout)
        try:
            asked = self._ask_all()
            if self._thread is not None:  # it ends by itself once the round is in
                self._thread.join(max(0.0, end - max(0.0, timeout) * SESSION_STOP_SHARE - time.monotonic()))
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(max(0.0, end - time.monotonic()))
            with self._lock:
                unsaved, self._awaiting = tuple(self._awaiting), set()
            if unsaved:
                log.warning("gave up waiting for resume data of %d torrent(s) at shutdown", len(unsaved))
            self._submit_resume()  # everything the shutdown round collected, in one batch
            saved = time.monotonic()
            self._session = None  # libtorrent's destructor stops the network thread
        log.info("engine closed: resume data of %d torrent(s) asked for, in after %.2f s; session stopped in %.2f s",
                 asked, saved - started, time.monotonic() - saved)  # fmt: skip
        return unsaved

    def _ask_all(self) -> int:
        """Ask every torrent for its resume data at once; the alert thread ends once every answer is in.

        Returns how many were asked. Closing and asking under one hold of the
        lock: the alert thread never sees the engine closed with the round not
        yet asked for.
        """
        with self._lock:
            self._closed = True
            for torrent in self._by_id.values():
                if torrent.handle.is_valid():
                    flags = lt.torrent_handle.save_info_dict
                    if torrent.wrote:  # a torrent that wrote nothing this run has nothing to flush: no disk job
                        flags |= lt.torrent_handle.flush_disk_cache
                    # one the adapter saw change is saved whatever libtorrent counts as modified (it may not count
                    # all of ours); the rest only if more than libtorrent's counters changed: a restart is no
                    # reason to write every torrent's resume data again
                    if not (torrent.dirty or torrent.pieces):
                        flags |= _IF_CONTENT_CHANGED
                    torrent.handle.save_resume_data(flags)
                    self._awaiting.add(torrent.torrent_id)
                    self._saves_pending += 1
            return len(self._awaiting)

    def _round_is_in(self) -> bool:
        """Whether the engine is closed and every resume-data save it asked for has answered: the alert thread ends."""
        with self._lock:
            return self._closed and self._saves_pending == 0

    # -- commands ----------------------------------------------------------------------

    def add(self, source: TorrentSource, options: AddOptions) -> uuid.UUID:
        """Add a torrent (events follow from the alert thread); an unreadable source raises InvalidInput."""
        session = self._require_session()
        params = _params_for(source)
        torrent_id = _id_of(_hashes_of(params))
        if source.resume_data is not None:  # progress verified elsewhere: no recheck
            params = _resumed(source.resume_data, params, torrent_id)
        params.flags = _BASE_FLAGS
        _apply_options(params, options)
        with self._lock:
            if torrent_id in self._by_id:
                return torrent_id
            try:
                handle = session.add_torrent(params)
            except RuntimeError as exc:
                raise InvalidInput(f"libtorrent refused the torrent: {exc}") from None
            self._track(torrent_id, handle, restored=False, paused=options.paused)
        return torrent_id

    def remove(self, torrent_id: uuid.UUID, *, with_data: bool = False) -> None:
        session = self._require_session()
        with self._lock:
            torrent = self._by_id.pop(torrent_id, None)
            if torrent is None:
                return
            self._by_handle.pop(torrent.handle, None)
            self._removing[torrent.handle] = torrent_id
        session.remove_torrent(torrent.handle, lt.session.delete_files if with_data else 0)

    def pause(self, torrent_id: uuid.UUID) -> None:
        torrent = self._get(torrent_id)
        if torrent is not None:
            torrent.handle.unset_flags(lt.torrent_flags.auto_managed)
            torrent.handle.pause()

    def resume(self, torrent_id: uuid.UUID) -> None:
        """Resume a paused torrent; a failed one has its error cleared and is tried again."""
        torrent = self._get(torrent_id)
        if torrent is not None:
            with self._lock:
                retry = torrent.failed
                torrent.failed = False
            if retry:
                torrent.handle.clear_error()
            torrent.handle.resume()

    def set_file_priorities(self, torrent_id: uuid.UUID, priorities: Mapping[int, int]) -> None:
        """Set priorities by file index; indices outside the torrent raise InvalidInput."""
        torrent = self._get(torrent_id)
        if torrent is None:
            return
        current = list(torrent.handle.get_file_priorities())
        for index, priority in priorities.items():
            if not 0 <= index < len(current):
                raise InvalidInput(f"torrent {torrent_id} has no file {index} (it has {len(current)})")
            if not 0 <= priority <= 7:
                raise InvalidInput(f"file priority must be 0..7, got {priority}")
            current[index] = priority
        torrent.handle.prioritize_files(current)

    def set_sequential(self, torrent_id: uuid.UUID, sequential: bool) -> None:
        torrent = self._get(torrent_id)
        if torrent is not None:
            if sequential:
                torrent.handle.set_flags(lt.torrent_flags.sequential_download)
            else:
                torrent.handle.unset_flags(lt.torrent_flags.sequential_download)
            with self._lock:
                torrent.dirty = True

    def set_limits(self, torrent_id: uuid.UUID, download_limit: int | None, upload_limit: int | None) -> None:
        torrent = self._get(torrent_id)
        if torrent is not None:
            torrent.handle.set_download_limit(_limit(download_limit))
            torrent.handle.set_upload_limit(_limit(upload_limit))
            with self._lock:
                torrent.dirty = True

    def recheck(self, torrent_id: uuid.UUID) -> None:
        """Hash every piece on disk again (after files changed behind libtorrent's back)."""
        torrent = self._get(torrent_id)
        if torrent is not None:
            torrent.handle.force_recheck()

    def reannounce(self, torrent_id: uuid.UUID) -> None:
        torrent = self._get(torrent_id)
        if torrent is not None:
            torrent.handle.force_reannounce()

    def relocate(self, torrent_id: uuid.UUID, save_path: Path) -> None:
        """Seed from ``save_path`` from now on; the files are there already, so nothing moves or is checked."""
        torrent = self._get(torrent_id)
        if torrent is not None:
            torrent.handle.move_storage(str(save_path), lt.move_flags_t.reset_save_path_unchecked)
            with self._lock:
                torrent.dirty = True

    def has(self, torrent_id: uuid.UUID) -> bool:
        with self._lock:
            return torrent_id in self._by_id

    # -- libtorrent-only extras (the loopback demo and tests) -----------------------------

    @property
    def listen_port(self) -> int:
        """The TCP port the session listens on (useful with ``listen_interfaces = "127.0.0.1:0"``)."""
        return int(self._require_session().listen_port())

    def connect_peer(self, torrent_id: uuid.UUID, endpoint: tuple[str, int]) -> None:
        """Connect ``torrent_id`` to a peer at ``endpoint``: how a loopback download finds its seeder."""
        torrent = self._get(torrent_id)
        if torrent is None:
            raise InvalidInput(f"no torrent {torrent_id} in this engine")
        torrent.handle.connect_peer(endpoint)

    def native_states(self, torrent_id: uuid.UUID) -> tuple[str, ...]:
        """libtorrent states ``torrent_id`` went through in this run, oldest first (for diagnosis)."""
        torrent = self._get(torrent_id)
        with self._lock:
            return tuple(torrent.native_states) if torrent is not None else ()

    def applied(self, torrent_id: uuid.UUID) -> AddOptions | None:
        """The choices libtorrent applies to the torrent now, read from its handle (tests check restores with it)."""
        torrent = self._get(torrent_id)
        if torrent is None:
            return None
        handle = torrent.handle
        flags = handle.flags()
        download, upload = handle.download_limit(), handle.upload_limit()
        return AddOptions(
            save_path=Path(handle.status().save_path),
            paused=bool(flags & lt.torrent_flags.paused),
            sequential=bool(flags & lt.torrent_flags.sequential_download),
            file_priorities=[int(p) for p in handle.get_file_priorities()],
            download_limit=download if download > 0 else None,
            upload_limit=upload if upload > 0 else None,
        )

    def torrent_ids(self) -> frozenset[uuid.UUID]:
        """Every torrent in the session now."""
        with self._lock:
            return frozenset(self._by_id)

    # -- internals -----------------------------------------------------------------------

    def _require_session(self) -> lt.session:
        if self._session is None or self._closed:
            raise RuntimeError("engine is not running: call start() first (and not after close())")
        return self._session

    def _get(self, torrent_id: uuid.UUID) -> _Torrent | None:
        self._require_session()
        with self._lock:
            return self._by_id.get(torrent_id)

    def _track(self, torrent_id: uuid.UUID, handle: lt.torrent_handle, *, restored: bool, paused: bool) -> _Torrent:
        torrent = _Torrent(torrent_id, handle, restored=restored, added_at=time.monotonic(), paused=paused)
        with self._lock:
            self._by_id[torrent_id] = torrent
            self._by_handle[handle] = torrent
        return torrent

    def _run(self) -> None:
        """The alert thread: dispatch alerts, post status updates and resume-data saves on their timers."""
        session = self._require_session()
        status_every = self.settings.status_interval_ms / 1000
        save_every = self.settings.resume_save_interval_s
        next_status = next_pieces = time.monotonic()
        next_save = time.monotonic() + save_every
        while not self._stop.is_set():
            session.wait_for_alert(self.settings.alert_poll_ms)
            for alert in session.pop_alerts():
                self._dispatch_safely(alert)
            if self._round_is_in():
                return  # close() hands the whole round over at once
            if not self._closed:
                self._submit_resume()
            now = time.monotonic()
            if now >= next_status:
                session.post_torrent_updates()
                next_status = now + status_every
            if now >= next_pieces and not self._closed:
                self._save_pieces()
                next_pieces = now + self._piece_save_every
            if now >= next_save and not self._closed:
                self._save_changed(now)
                next_save = now + save_every

    def _save_pieces(self) -> None:
        """Ask for resume data of torrents with newly verified pieces: what a crash would cost them.

        No grace period: a torrent's pieces finish after its ``TorrentAdded``
        was published, and the writer stores a flush's statuses before its
        resume data.
        """
        flags = lt.torrent_handle.save_info_dict
        with self._lock:
            for torrent in self._by_id.values():
                if torrent.pieces and torrent.handle.is_valid():
                    torrent.pieces = torrent.dirty = torrent.reported = False
                    torrent.handle.save_resume_data(flags)
                    self._saves_pending += 1

    def _save_changed(self, now: float) -> None:
        """Ask for resume data of torrents that changed, once they have been known for one interval.

        The grace period gives the orchestrator time to persist the status: a
        store drops resume data of a torrent it does not hold.
        """
        grace = self.settings.resume_save_interval_s
        with self._lock:
            for torrent in self._by_id.values():
                eligible = torrent.restored or now - torrent.added_at >= grace
                if not ((torrent.dirty or torrent.reported) and eligible and torrent.handle.is_valid()):
                    continue
                flags = lt.torrent_handle.save_info_dict
                if not torrent.dirty:  # only libtorrent's word: saved if more than its counters changed
                    flags |= _IF_CONTENT_CHANGED
                torrent.dirty = torrent.pieces = torrent.reported = False
                torrent.handle.save_resume_data(flags)
                self._saves_pending += 1

    def _dispatch_safely(self, alert: lt.alert) -> None:
        """Dispatch ``alert``; a failure is logged (throttled), never raised: one alert must not stop the rest."""
        try:
            self._dispatch(alert)
        except Exception as exc:
            self._throttle.failure(
                f"alert {type(alert).__name__}",
                "failed to handle libtorrent alert %s: %s",
                type(alert).__name__,
                exc,
                level=logging.ERROR,
            )

    def _lookup(self, handle: lt.torrent_handle) -> _Torrent | None:
        with self._lock:
            return self._by_handle.get(handle)

    def _dispatch(self, alert: lt.alert) -> None:
        if isinstance(alert, lt.piece_finished_alert):  # the most frequent alert: first, and only a flag
            piece_torrent = self._lookup(alert.handle)
            if piece_torrent is not None and piece_torrent.checked:
                piece_torrent.pieces = piece_torrent.wrote = True
            return
        if isinstance(alert, lt.state_update_alert):
            for status in alert.status:
                self._on_status(status)
            return
        if isinstance(alert, lt.torrent_removed_alert):
            self._on_removed(alert)
            return
        if isinstance(alert, lt.save_resume_data_alert | lt.save_resume_data_failed_alert):
            self._on_saved(alert)
            return
        handle: lt.torrent_handle | None = getattr(alert, "handle", None)
        torrent = self._lookup(handle) if handle is not None else None
        if torrent is None:
            return
        if isinstance(alert, lt.add_torrent_alert):
            if not torrent.described:
                self._on_added(torrent)
        elif isinstance(alert, lt.metadata_received_alert):
            self._on_added(torrent)  # the name and the files are known only now
        elif isinstance(alert, lt.state_changed_alert):
            native = _native(alert.state)
            with self._lock:
                torrent.native_states.append(native)
                # a restored torrent reading its resume data back and settling in the state it was restored in
                # changed nothing: no event, and no resume data to save again
                news = not torrent.restored or (
                    native not in _RESTORE_STATES and _mapped(alert.state) is not torrent.state
                )
                torrent.dirty = torrent.dirty or news
            if news:
                self._publish_state(torrent, _mapped(alert.state))
        elif isinstance(alert, lt.torrent_checked_alert):
            with self._lock:
                torrent.checked = True  # pieces finished from now on are new
        elif isinstance(alert, lt.torrent_finished_alert):
            self._on_finished(torrent)
        elif isinstance(alert, lt.cache_flushed_alert):
            self._on_flushed(torrent)
        elif isinstance(alert, lt.torrent_paused_alert):
            with self._lock:
                torrent.paused = True
                torrent.dirty = True
            self._publish_state(torrent, TorrentState.STOPPED)
        elif isinstance(alert, lt.torrent_resumed_alert):
            with self._lock:
                torrent.paused = False
                torrent.dirty = True
            self._publish_state(torrent, _mapped(torrent.handle.status().state))
        elif isinstance(alert, lt.torrent_error_alert | lt.file_error_alert):
            self._on_error(torrent, alert)
        elif isinstance(alert, lt.file_prio_alert):
            with self._lock:
                torrent.dirty = True
            self._publish_files(torrent)
        elif isinstance(alert, lt.fastresume_rejected_alert):
            log.warning(
                "torrent %s: resume data rejected, libtorrent rechecks it: %s", torrent.torrent_id, alert.message()
            )

    def _on_added(self, torrent: _Torrent) -> None:
        status = torrent.handle.status()
        self._publish(
            TorrentAdded(
                torrent_id=torrent.torrent_id,
                name=status.name or None,
                download_dir=status.save_path,
                info_hash=_hex_of(status.info_hashes),
            )
        )
        if status.has_metadata:
            self._publish_files(torrent)
        if torrent.paused:
            self._publish_state(torrent, TorrentState.STOPPED)

    def _publish_files(self, torrent: _Torrent) -> None:
        info = torrent.handle.torrent_file()
        if info is None:
            return
        layout = info.layout()
        priorities = list(torrent.handle.get_file_priorities())
        done = list(torrent.handle.file_progress(lt.torrent_handle.piece_granularity))
        files = []
        for index in range(layout.num_files()):
            if layout.file_flags(index) & lt.file_storage.flag_pad_file:
                continue  # alignment padding of hybrid torrents: never on disk
            priority = int(priorities[index]) if index < len(priorities) else 4
            files.append(
                FileEntry(
                    index=index,
                    path=layout.file_path(index).replace("\\", "/"),
                    size=int(layout.file_size(index)),
                    bytes_completed=int(done[index]) if index < len(done) else 0,
                    priority=priority,
                    selected=priority > 0,
                )
            )
        self._publish(FilesDiscovered(torrent_id=torrent.torrent_id, files=files))

    def _publish_state(self, torrent: _Torrent, state: TorrentState, failure: str | None = None) -> None:
        """Publish ``state`` unless it is the one last published; a failed or paused torrent keeps its state."""
        with self._lock:
            if state is not TorrentState.FAILED:
                if torrent.failed:
                    return
                if torrent.paused:
                    state = TorrentState.STOPPED
            if torrent.state is state:
                return
            torrent.state = state
        self._publish(StateChanged(torrent_id=torrent.torrent_id, state=state, failure=failure))

    def _progress_of(self, torrent: _Torrent, status: lt.torrent_status) -> ProgressUpdated:
        downloaded_ever = int(status.all_time_download) or int(status.total_wanted_done)
        ratio = int(status.all_time_upload) / downloaded_ever if downloaded_ever else 0.0
        return ProgressUpdated(
            torrent_id=torrent.torrent_id,
            downloaded=int(status.total_wanted_done),
            total=int(status.total_wanted),
            download_bps=int(status.download_payload_rate),
            upload_bps=int(status.upload_payload_rate),
            ratio=ratio,
        )

    def _on_status(self, status: lt.torrent_status) -> None:
        torrent = self._lookup(status.handle)
        if torrent is None:
            return
        traffic = (int(status.all_time_upload), int(status.all_time_download))
        with self._lock:
            if torrent.traffic is not None and traffic != torrent.traffic:
                torrent.dirty = True  # bytes moved: what its ratio counts is worth a save
            torrent.traffic = traffic
            torrent.reported = torrent.reported or bool(status.need_save_resume)
        if status.state == lt.torrent_status.checking_resume_data:
            return  # it reports nothing done until it has read its resume data: not progress lost
        progress = self._progress_of(torrent, status)
        if progress != torrent.progress:  # libtorrent reports changes the catalog does not show (peers, trackers)
            torrent.progress = progress
            self._publish(progress)

    def _on_finished(self, torrent: _Torrent) -> None:
        """Publish completion once per torrent and run, never for a restored torrent that was already done.

        libtorrent posts ``torrent_finished`` again when a restored seed is
        re-added; completing it again would re-run FsOps on a moved payload.
        """
        with self._lock:
            if torrent.completed:  # first: a restored seed's alert must not cost a status call (a round trip)
                return
            torrent.completed = True
            torrent.dirty = True
        status = torrent.handle.status()
        if torrent.restored and int(status.total_payload_download) == 0:
            log.debug("torrent %s: restored complete, no completion event", torrent.torrent_id)
            return
        # Finished means every piece passed its hash check, not that every byte is on disk:
        # FsOps reads the files next, so completion waits for the disk cache to be flushed.
        with self._lock:
            torrent.flushing = True
        torrent.handle.flush_cache()

    def _on_flushed(self, torrent: _Torrent) -> None:
        with self._lock:
            if not torrent.flushing:
                return
            torrent.flushing = False
        torrent.progress = self._progress_of(torrent, torrent.handle.status())
        self._publish(torrent.progress)
        self._publish(TorrentCompleted(torrent_id=torrent.torrent_id))

    def _on_error(self, torrent: _Torrent, alert: lt.torrent_error_alert | lt.file_error_alert) -> None:
        with self._lock:
            already = torrent.failed
            torrent.failed = True
            torrent.dirty = True
        if not already:
            self._publish_state(torrent, TorrentState.FAILED, failure=alert.message())

    def _on_removed(self, alert: lt.torrent_removed_alert) -> None:
        with self._lock:
            torrent_id = self._removing.pop(alert.handle, None)
        if torrent_id is None:
            torrent_id = _id_of(alert.info_hashes)
        self._publish(TorrentRemoved(torrent_id=torrent_id))

    def _on_saved(self, alert: lt.save_resume_data_alert | lt.save_resume_data_failed_alert) -> None:
        """Collect the saved resume data; :meth:`_submit_resume` hands the round's batch over."""
        torrent = self._lookup(alert.handle)
        try:
            if isinstance(alert, lt.save_resume_data_alert) and torrent is not None:
                data = bytes(lt.write_resume_data_buf(alert.params))
                with self._lock:
                    self._resume_out.append((torrent.torrent_id, data))
            elif isinstance(alert, lt.save_resume_data_failed_alert) and torrent is not None:
                log.debug("torrent %s: no resume data saved: %s", torrent.torrent_id, alert.message())
        finally:
            with self._lock:
                if torrent is not None:
                    self._awaiting.discard(torrent.torrent_id)
                self._saves_pending = max(0, self._saves_pending - 1)

    def _submit_resume(self) -> None:
        """Hand the collected resume data to the store in one batch (the writer, in a daemon: no wait)."""
        with self._lock:
            batch, self._resume_out = self._resume_out, []
        if not batch:
            return
        try:
            self._store.submit_resume_data(batch)
        except Exception as exc:
            self._throttle.failure(
                "resume data", "saving resume data of %d torrent(s) failed, retried later: %s", len(batch), exc
            )
            with self._lock:
                for torrent_id, _ in batch:
                    torrent = self._by_id.get(torrent_id)
                    if torrent is not None:
                        torrent.dirty = True
            return
        self._throttle.recovered("resume data", "saving resume data succeeds again")
