"""A scripted, deterministic engine: the events of a real one, without a network or a disk.

Tests drive it step by step (:meth:`SimulatedEngine.step`); the harness's
daemon (``python -m revaer_core.testing run``, :mod:`revaer_core.testing.cli`)
lets a background thread step it at a fixed rate. Its events have the same
types, order and meaning as those of
:class:`revaer_core.engine.libtorrent.LibtorrentEngine`:

- add: ``TorrentAdded``, ``FilesDiscovered``, ``StateChanged(downloading)``
  (``stopped`` when added paused; ``fetching_metadata`` first for a magnet,
  then ``TorrentAdded`` again with the name, and the files);
- each step: ``ProgressUpdated`` per downloading torrent; at the last one
  ``StateChanged(seeding)``, a final ``ProgressUpdated`` and ``TorrentCompleted``;
- a scripted failure: ``StateChanged(failed, message)``;
- restore at start: ``TorrentAdded``, ``FilesDiscovered``, the state, one
  ``ProgressUpdated``, and no ``TorrentCompleted`` for a torrent already done.

The same script and seed give the same event sequence, byte for byte. Its
resume data (a small JSON document) goes through the store like the real
engine's, so restart tests run without libtorrent. Its size does not grow
with the steps (the progress curve is made again from its seed), and with a
ticker it is saved on a clock, as libtorrent saves pieces, not every so many
steps: a faster ticker makes more events, not more blobs.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import attrs

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
    EventPayload,
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

RESUME_FORMAT = "revaer-simulated/1"
_BTIH = re.compile(r"urn:btih:([0-9a-fA-F]{40}|[0-9a-fA-F]{64})")


@attrs.frozen
class Failure:
    """Torrent number ``torrent`` (0-based, in the order torrents enter the engine) fails at step ``at_step``."""

    torrent: int
    at_step: int  #: 1-based: the step that would have been the torrent's ``at_step``-th bit of progress
    message: str = "simulated failure"


@attrs.frozen
class Removal:
    """Torrent number ``torrent`` is removed from the engine at engine step ``at_step`` (as a user's remove would)."""

    torrent: int
    at_step: int  #: 1-based count of :meth:`SimulatedEngine.step` calls


def _failures(value: Sequence[Failure]) -> tuple[Failure, ...]:
    return tuple(value)


def _removals(value: Sequence[Removal]) -> tuple[Removal, ...]:
    return tuple(value)


@attrs.frozen
class SimulationScript:
    """What the simulated engine does; every choice it makes comes from ``seed``."""

    torrents: int = 0  #: torrents the engine adds by itself at start (beyond what it restores)
    files_per_torrent: int = 1
    file_size: int = 1024 * 1024  #: average; each file's size varies by up to half of it
    steps: int = 10  #: steps from nothing to complete
    seed: int = 0
    failures: tuple[Failure, ...] = attrs.field(default=(), converter=_failures)
    removals: tuple[Removal, ...] = attrs.field(default=(), converter=_removals)
    save_path: Path = Path("simulated")
    name_prefix: str = "sim"
    resume_every_steps: int = 5  #: resume data of changed torrents is saved every this many steps

    def __attrs_post_init__(self) -> None:
        for name in ("torrents", "files_per_torrent", "file_size", "steps", "resume_every_steps"):
            minimum = 0 if name == "torrents" else 1
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}")


@attrs.define
class _SimTorrent:
    torrent_id: uuid.UUID
    number: int  #: the order it entered the engine in; what failures refer to
    name: str | None
    save_path: str
    sizes: list[int]
    priorities: list[int]
    cuts: list[int]  #: progress after each step, in parts per million (made from ``curve``)
    curve: str  #: the seed the cuts come from, kept in the resume data instead of them
    step: int = 0  #: steps of progress made
    metadata: bool = True
    paused: bool = False
    failed: bool = False
    completed: bool = False
    sequential: bool = False
    paths: list[str] | None = None  #: file paths from real metainfo; else made up from the name
    download_limit: int | None = None
    upload_limit: int | None = None
    fired: set[int] = attrs.field(factory=set)  #: failure steps already reported
    state: TorrentState | None = None
    dirty: bool = False
    age: int = 0  #: steps since it entered the engine

    @property
    def wanted(self) -> int:
        return sum(size for size, priority in zip(self.sizes, self.priorities, strict=True) if priority > 0)

    @property
    def downloaded(self) -> int:
        if self.step == 0:
            return 0
        return self.wanted * self.cuts[min(self.step, len(self.cuts)) - 1] // 1_000_000

    @property
    def done(self) -> bool:
        return self.step >= len(self.cuts)

    def files(self) -> tuple[FileEntry, ...]:
        root = self.name or self.torrent_id.hex
        fraction_num, fraction_den = self.downloaded, self.wanted or 1
        paths = self.paths or [f"{root}/file-{i:03d}.bin" for i in range(len(self.sizes))]
        return tuple(
            FileEntry(
                index=i,
                path=paths[i],
                size=size,
                bytes_completed=size * fraction_num // fraction_den if priority > 0 else 0,
                priority=priority,
                selected=priority > 0,
            )
            for i, (size, priority) in enumerate(zip(self.sizes, self.priorities, strict=True))
        )

    def resume_data(self) -> bytes:
        document: dict[str, Any] = {
            "format": RESUME_FORMAT,
            "number": self.number,
            "name": self.name,
            "save_path": self.save_path,
            "sizes": self.sizes,
            "priorities": self.priorities,
            "curve": self.curve,
            "steps": len(self.cuts),
            "step": self.step,
            "metadata": self.metadata,
            "paused": self.paused,
            "sequential": self.sequential,
            "paths": self.paths,
            "fired": sorted(self.fired),
        }
        return json.dumps(document, sort_keys=True).encode()

    @classmethod
    def from_resume_data(cls, torrent_id: uuid.UUID, data: bytes) -> _SimTorrent:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != RESUME_FORMAT:
            raise ValueError(f"not {RESUME_FORMAT} resume data")
        torrent = cls(
            torrent_id=torrent_id,
            number=int(doc["number"]),
            name=doc["name"],
            save_path=str(doc["save_path"]),
            sizes=[int(s) for s in doc["sizes"]],
            priorities=[int(p) for p in doc["priorities"]],
            cuts=_curve(str(doc["curve"]), int(doc["steps"])),
            curve=str(doc["curve"]),
            step=int(doc["step"]),
            metadata=bool(doc["metadata"]),
            paused=bool(doc["paused"]),
            sequential=bool(doc["sequential"]),
            paths=[str(p) for p in doc["paths"]] if doc.get("paths") else None,
            fired={int(s) for s in doc["fired"]},
        )
        torrent.completed = torrent.metadata and torrent.done
        return torrent


def _curve(seed: str, steps: int) -> list[int]:
    """Progress after each of ``steps`` steps, in parts per million: uneven, rising, ending at a million."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not secrets
    weights = [rng.uniform(0.5, 1.5) for _ in range(steps)]
    total, running, cuts = sum(weights), 0.0, []
    for weight in weights:
        running += weight
        cuts.append(min(1_000_000, round(running / total * 1_000_000)))
    cuts[-1] = 1_000_000
    return cuts


@attrs.frozen
class _Identity:
    """What the simulated engine takes from a source: the id, the name, and real files when it has them."""

    torrent_id: uuid.UUID
    name: str | None
    metadata: bool
    files: tuple[tuple[str, int], ...] | None = None  #: (path, size) from real metainfo


def _id_for_source(source: TorrentSource) -> _Identity:
    """The real info-hash id for real metainfo and magnets; a hash of the bytes for anything else.

    Tests hand the simulated engine made-up sources; real ones get the id the
    libtorrent engine would give them, so control operations agree with it.
    """
    from revaer_core.control.metainfo import read_magnet, read_metainfo

    if source.magnet is not None:
        try:
            info = read_magnet(source.magnet)
        except InvalidInput:
            names = parse_qs(urlsplit(source.magnet).query).get("dn")
            digest = hashlib.sha1(source.magnet.encode()).hexdigest()  # noqa: S324 - an id, not security
            return _Identity(torrent_id_for(digest), names[0] if names else None, metadata=False)
        return _Identity(info.torrent_id, info.name, metadata=False)
    if source.metainfo is not None:
        data = source.metainfo
    else:
        assert source.torrent_file is not None
        try:
            data = source.torrent_file.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {source.torrent_file}: {exc}") from None
    try:
        info = read_metainfo(data)
    except InvalidInput:
        return _Identity(torrent_id_for(hashlib.sha1(data).hexdigest()), None, metadata=True)  # noqa: S324 - an id
    files = tuple((f.path, f.size) for f in info.files or () if not f.pad)
    return _Identity(info.torrent_id, info.name, metadata=True, files=files)


class SimulatedEngine:
    """The Engine protocol, played from a :class:`SimulationScript`.

    :param publish: where events go.
    :param store: resume data is saved to it and, with ``restore_from_store``, restored from it.
    :param script: the torrents, their progress and their failures.
    :param restore_from_store: re-add at start every torrent the store holds simulated resume data for.
    :param tick_interval_s: with a value, a background thread calls :meth:`step` that often after start.
    :param resume_interval_s: with a ticker, how often resume data of changed torrents is saved (a
        daemon passes its flush interval, as for libtorrent); without, every ``resume_every_steps`` steps.
    """

    def __init__(
        self,
        publish: Publish,
        store: RuntimeStore | None = None,
        script: SimulationScript | None = None,
        *,
        restore_from_store: bool = True,
        tick_interval_s: float | None = None,
        resume_interval_s: float | None = None,
    ) -> None:
        if tick_interval_s is not None and tick_interval_s <= 0:
            raise ValueError(f"tick_interval_s must be > 0, got {tick_interval_s}")
        if resume_interval_s is not None and resume_interval_s <= 0:
            raise ValueError(f"resume_interval_s must be > 0, got {resume_interval_s}")
        #: saves on the ticker's clock; only with a ticker (a test stepping by hand counts steps)
        self._resume_interval_s = resume_interval_s if tick_interval_s is not None else None
        self._publish = publish
        self._store = store or RuntimeStore.none()
        self.script = script or SimulationScript()
        self._restore_from_store = restore_from_store
        self._tick_interval_s = tick_interval_s
        self._lock = threading.RLock()
        self._torrents: dict[uuid.UUID, _SimTorrent] = {}
        self._numbers = 0
        self._steps = 0
        self._failures = {(f.torrent, f.at_step): f.message for f in self.script.failures}
        self._removals: dict[int, set[int]] = {}  #: engine step -> torrent numbers removed then
        for removal in self.script.removals:
            self._removals.setdefault(removal.at_step, set()).add(removal.torrent)
        self._outbox: collections.deque[EventPayload] = collections.deque()
        self._draining = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._throttle = LogThrottle(log)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, plan: Sequence[RestoreRequest] | None = None) -> Sequence[RestoredTorrent]:
        """Restore ``plan`` (else what the store holds, if asked to), add the script's torrents, start the ticker."""
        with self._lock:
            if self._started:
                raise RuntimeError("engine already started")
            self._started = True
            restored = self._restore(plan)
            for n in range(self.script.torrents):
                name = f"{self.script.name_prefix}-{self.script.seed}-{n:05d}"
                torrent_id = torrent_id_for(hashlib.sha1(name.encode()).hexdigest())  # noqa: S324 - an id
                if torrent_id not in self._torrents:
                    identity = _Identity(torrent_id, name, metadata=True)
                    self._new_torrent(torrent_id, identity, str(self.script.save_path), paused=False)
        self._drain()
        if self._tick_interval_s is not None:
            self._thread = threading.Thread(target=self._tick, name="revaer-simulated", daemon=True)
            self._thread.start()
        return restored

    def _restore(self, plan: Sequence[RestoreRequest] | None) -> list[RestoredTorrent]:
        if not self._restore_from_store:
            return []
        if plan is None:
            if not self._store.persistent:
                log.info("no runtime store selected: no torrents restored, the simulated engine starts empty")
                return []
            plan = plan_from_store(self._store, self.script.save_path)
        restored = []
        for request in plan:
            torrent = self._restored(request)
            if torrent is None:
                continue
            if request.options is not None:
                self._apply(torrent, request.options)
            self._numbers = max(self._numbers, torrent.number + 1)
            self._enter(torrent)
            restored.append(RestoredTorrent(torrent_id=request.torrent_id, name=torrent.name))
        log.info("restored %d torrent(s) from the %s store", len(restored), self._store.backend)
        return restored

    def _restored(self, request: RestoreRequest) -> _SimTorrent | None:
        """The torrent from its resume data, else anew from its source (as a recheck of an empty disk finds it)."""
        if request.resume_data is not None:
            try:
                return _SimTorrent.from_resume_data(request.torrent_id, request.resume_data)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "torrent %s: stored resume data is not the simulated engine's (%s)", request.torrent_id, exc
                )
        if request.source is None:
            return None
        identity = _id_for_source(request.source)
        save_path = str(request.options.save_path if request.options else self.script.save_path)
        return self._new_torrent(request.torrent_id, identity, save_path, paused=False, enter=False)

    @staticmethod
    def _apply(torrent: _SimTorrent, options: AddOptions) -> None:
        torrent.save_path = str(options.save_path)
        torrent.paused = options.paused
        torrent.sequential = options.sequential
        torrent.download_limit = options.download_limit
        torrent.upload_limit = options.upload_limit
        for index, priority in enumerate(options.file_priorities[: len(torrent.priorities)]):
            torrent.priorities[index] = priority

    def close(self, timeout: float = 10.0) -> tuple[uuid.UUID, ...]:
        """Stop the ticker and save resume data of every torrent that changed since its last save.

        Nothing here waits on anything but the ticker's last step, so every save
        is handed over: nothing is left unsaved.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))
        with self._lock:
            if self._closed:
                return ()
            self._closed = True
            self._save_batch([t for t in self._torrents.values() if t.dirty])
        return ()

    # -- commands ----------------------------------------------------------------------

    def add(self, source: TorrentSource, options: AddOptions) -> uuid.UUID:
        identity = _id_for_source(source)
        with self._lock:
            self._require_running()
            if identity.torrent_id not in self._torrents:
                save_path = str(options.save_path)
                torrent = self._new_torrent(
                    identity.torrent_id, identity, save_path, paused=options.paused, enter=False
                )
                self._apply(torrent, options)
                self._enter(torrent)
        self._drain()
        return identity.torrent_id

    def remove(self, torrent_id: uuid.UUID, *, with_data: bool = False) -> None:
        with self._lock:
            self._require_running()
            if self._torrents.pop(torrent_id, None) is not None:
                self._emit(TorrentRemoved(torrent_id=torrent_id))
        self._drain()

    def pause(self, torrent_id: uuid.UUID) -> None:
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None and not torrent.paused:
                torrent.paused = True
                torrent.dirty = True
                self._set_state(torrent, TorrentState.STOPPED)
        self._drain()

    def resume(self, torrent_id: uuid.UUID) -> None:
        """Resume a paused torrent; a failed one is tried again from where it failed."""
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None and (torrent.paused or torrent.failed):
                torrent.paused = False
                torrent.failed = False
                torrent.dirty = True
                self._set_state(torrent, self._natural_state(torrent))
        self._drain()

    def set_file_priorities(self, torrent_id: uuid.UUID, priorities: Mapping[int, int]) -> None:
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is None:
                return
            for index, priority in priorities.items():
                if not 0 <= index < len(torrent.sizes):
                    raise InvalidInput(f"torrent {torrent_id} has no file {index} (it has {len(torrent.sizes)})")
                if not 0 <= priority <= 7:
                    raise InvalidInput(f"file priority must be 0..7, got {priority}")
            for index, priority in priorities.items():
                torrent.priorities[index] = priority
            torrent.dirty = True
            if torrent.metadata:
                self._emit(FilesDiscovered(torrent_id=torrent_id, files=torrent.files()))
        self._drain()

    def set_sequential(self, torrent_id: uuid.UUID, sequential: bool) -> None:
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None:
                torrent.sequential = sequential
                torrent.dirty = True

    def set_limits(self, torrent_id: uuid.UUID, download_limit: int | None, upload_limit: int | None) -> None:
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None:
                torrent.download_limit, torrent.upload_limit = download_limit, upload_limit
                torrent.dirty = True

    def recheck(self, torrent_id: uuid.UUID) -> None:
        """A simulated recheck finds what the simulation downloaded: it only reports the progress again."""
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None and torrent.metadata:
                self._emit(self._progress(torrent))
        self._drain()

    def reannounce(self, torrent_id: uuid.UUID) -> None:
        """There are no trackers in a simulation: nothing to do."""
        self._get(torrent_id)

    def relocate(self, torrent_id: uuid.UUID, save_path: Path) -> None:
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None:
                torrent.save_path = str(save_path)
                torrent.dirty = True

    def has(self, torrent_id: uuid.UUID) -> bool:
        with self._lock:
            return torrent_id in self._torrents

    def options(self, torrent_id: uuid.UUID) -> AddOptions | None:
        """The choices the engine applies to a torrent now, for tests to check against the store."""
        with self._lock:
            t = self._torrents.get(torrent_id)
            if t is None:
                return None
            return AddOptions(
                save_path=Path(t.save_path),
                paused=t.paused,
                sequential=t.sequential,
                file_priorities=t.priorities,
                download_limit=t.download_limit,
                upload_limit=t.upload_limit,
            )

    # -- simulation controls -----------------------------------------------------------

    def step(self) -> int:
        """Advance every active torrent by one step; returns how many events that published."""
        with self._lock:
            self._require_running()
            before = len(self._outbox)
            self._steps += 1
            for torrent in list(self._torrents.values()):
                torrent.age += 1
                self._advance(torrent)
            doomed = self._removals.get(self._steps, set())
            for torrent in [t for t in self._torrents.values() if t.number in doomed]:
                del self._torrents[torrent.torrent_id]
                self._emit(TorrentRemoved(torrent_id=torrent.torrent_id))
            if self._resume_interval_s is None and self._steps % self.script.resume_every_steps == 0:
                every = self.script.resume_every_steps
                self._save_batch([t for t in self._torrents.values() if t.dirty and t.age >= every])
            published = len(self._outbox) - before
        self._drain()
        return published

    def run_until_idle(self, max_steps: int = 10_000) -> int:
        """Step until no torrent is downloading or fetching metadata; returns the steps taken."""
        for taken in range(max_steps):
            with self._lock:
                if not any(self._active(t) for t in self._torrents.values()):
                    return taken
            self.step()
        raise RuntimeError(f"torrents still active after {max_steps} steps")

    def fail(self, torrent_id: uuid.UUID, message: str) -> None:
        """Fail a torrent now, as a disk error would."""
        with self._lock:
            torrent = self._get(torrent_id)
            if torrent is not None:
                self._set_failed(torrent, message)
        self._drain()

    def torrent_ids(self) -> tuple[uuid.UUID, ...]:
        """Every torrent in the engine, in the order they entered it."""
        with self._lock:
            return tuple(self._torrents)

    # -- internals -----------------------------------------------------------------------

    def _require_running(self) -> None:
        if not self._started or self._closed:
            raise RuntimeError("engine is not running: call start() first (and not after close())")

    def _get(self, torrent_id: uuid.UUID) -> _SimTorrent | None:
        self._require_running()
        return self._torrents.get(torrent_id)

    def _new_torrent(
        self, torrent_id: uuid.UUID, identity: _Identity, save_path: str, *, paused: bool, enter: bool = True
    ) -> _SimTorrent:
        """A torrent starting from nothing: the script's files, or the metainfo's when it had real ones."""
        rng = random.Random(f"{self.script.seed}:{torrent_id}")  # noqa: S311 - a simulation, not secrets
        half = self.script.file_size // 2
        sizes = [self.script.file_size - half + rng.randint(0, 2 * half) for _ in range(self.script.files_per_torrent)]
        if identity.files:
            sizes = [size for _, size in identity.files]
        name = identity.name
        if name is None and identity.metadata:
            name = f"{self.script.name_prefix}-{torrent_id.hex[:8]}"
        curve = f"{self.script.seed}:{torrent_id}:curve"
        torrent = _SimTorrent(
            torrent_id=torrent_id,
            number=self._numbers,
            name=name,
            save_path=save_path,
            sizes=sizes,
            priorities=[4] * len(sizes),
            cuts=_curve(curve, self.script.steps),
            curve=curve,
            metadata=identity.metadata,
            paused=paused,
            paths=[path for path, _ in identity.files] if identity.files else None,
            dirty=True,
        )
        self._numbers += 1
        if enter:
            self._enter(torrent)
        return torrent

    def _enter(self, torrent: _SimTorrent) -> None:
        """Put ``torrent`` in the engine and announce it as the real adapter does."""
        self._torrents[torrent.torrent_id] = torrent
        self._emit(TorrentAdded(torrent_id=torrent.torrent_id, name=torrent.name, download_dir=torrent.save_path))
        if torrent.metadata:
            self._emit(FilesDiscovered(torrent_id=torrent.torrent_id, files=torrent.files()))
        self._set_state(torrent, self._natural_state(torrent))
        if torrent.metadata and torrent.step:
            self._emit(self._progress(torrent))

    def _natural_state(self, torrent: _SimTorrent) -> TorrentState:
        if torrent.paused:
            return TorrentState.STOPPED
        if not torrent.metadata:
            return TorrentState.FETCHING_METADATA
        return TorrentState.SEEDING if torrent.done else TorrentState.DOWNLOADING

    def _active(self, torrent: _SimTorrent) -> bool:
        return not (torrent.paused or torrent.failed) and not (torrent.metadata and torrent.done)

    def _advance(self, torrent: _SimTorrent) -> None:
        if not self._active(torrent):
            return
        if not torrent.metadata:
            torrent.metadata = True
            torrent.dirty = True
            if torrent.name is None:
                torrent.name = f"{self.script.name_prefix}-{torrent.torrent_id.hex[:8]}"
            self._emit(TorrentAdded(torrent_id=torrent.torrent_id, name=torrent.name, download_dir=torrent.save_path))
            self._emit(FilesDiscovered(torrent_id=torrent.torrent_id, files=torrent.files()))
            self._set_state(torrent, TorrentState.DOWNLOADING)
            return
        next_step = torrent.step + 1
        message = self._failures.get((torrent.number, next_step))
        if message is not None and next_step not in torrent.fired:
            torrent.fired.add(next_step)
            self._set_failed(torrent, message)
            return
        before = torrent.downloaded
        torrent.step = next_step
        torrent.dirty = True
        if not torrent.done:
            self._emit(self._progress(torrent, rate=torrent.downloaded - before))
            return
        self._set_state(torrent, TorrentState.SEEDING)
        self._emit(self._progress(torrent, rate=torrent.downloaded - before))
        if not torrent.completed:
            torrent.completed = True
            self._emit(TorrentCompleted(torrent_id=torrent.torrent_id))

    def _progress(self, torrent: _SimTorrent, rate: int = 0) -> ProgressUpdated:
        return ProgressUpdated(
            torrent_id=torrent.torrent_id,
            downloaded=torrent.downloaded,
            total=torrent.wanted,
            download_bps=max(rate, 0),
            upload_bps=0,
            ratio=0.0,
        )

    def _set_state(self, torrent: _SimTorrent, state: TorrentState, failure: str | None = None) -> None:
        if torrent.state is not state:
            torrent.state = state
            self._emit(StateChanged(torrent_id=torrent.torrent_id, state=state, failure=failure))

    def _set_failed(self, torrent: _SimTorrent, message: str) -> None:
        if not torrent.failed:
            torrent.failed = True
            torrent.dirty = True
            self._set_state(torrent, TorrentState.FAILED, failure=message)

    def _save_batch(self, torrents: Sequence[_SimTorrent]) -> None:
        """Hand these torrents' resume data to the store in one batch (in a daemon, its writer: no wait)."""
        if not torrents:
            return
        for torrent in torrents:
            torrent.dirty = False
        try:
            self._store.submit_resume_data([(t.torrent_id, t.resume_data()) for t in torrents])
        except Exception as exc:
            for torrent in torrents:
                torrent.dirty = True
            self._throttle.failure(
                "resume data", "saving resume data of %d torrent(s) failed, retried later: %s", len(torrents), exc
            )
            return
        self._throttle.recovered("resume data", "saving resume data succeeds again")

    def _emit(self, payload: EventPayload) -> None:
        self._outbox.append(payload)

    def _drain(self) -> None:
        """Publish queued events in order, outside the state lock; one thread drains at a time.

        A subscriber may call back into the engine: its events join the queue and
        the drain already running publishes them next.
        """
        with self._lock:
            if self._draining:
                return
            self._draining = True
        try:
            while True:
                with self._lock:
                    if not self._outbox:
                        self._draining = False
                        return
                    payload = self._outbox.popleft()
                self._publish(payload)
        except BaseException:
            with self._lock:
                self._draining = False
            raise

    def _tick(self) -> None:
        assert self._tick_interval_s is not None
        next_save = time.monotonic() + (self._resume_interval_s or 0.0)
        while not self._stop.wait(self._tick_interval_s):
            try:
                self.step()
                if self._resume_interval_s is not None and time.monotonic() >= next_save:
                    next_save = time.monotonic() + self._resume_interval_s
                    self._save_changed()
            except RuntimeError:
                return  # closed under us
            except Exception:
                log.exception("simulated engine step failed")

    def _save_changed(self) -> None:
        """Resume data of every torrent that changed since its last save, as one batch."""
        with self._lock:
            if not self._closed:
                self._save_batch([t for t in self._torrents.values() if t.dirty])


@attrs.frozen
class SimulatedEngineFactory:
    """What a daemon is handed to run the simulated engine (an :class:`~revaer_core.engine.registry.EngineFactory`).

    :param script: what the engine does; by default nothing of its own, saving into ``download_dir``.
    :param tick_interval_s: how often its background thread steps it.
    """

    name: ClassVar[str] = "simulated"
    script: SimulationScript | None = None
    tick_interval_s: float = 0.05

    def __call__(
        self, publish: Publish, store: RuntimeStore, settings: EngineSettings, resume_interval_s: float | None = None
    ) -> SimulatedEngine:
        script = self.script or SimulationScript(save_path=settings.download_dir)
        return SimulatedEngine(
            publish, store, script, tick_interval_s=self.tick_interval_s, resume_interval_s=resume_interval_s
        )
