"""The watch folder: .torrent files dropped into ``[engine] watch_dir`` are added, then renamed.

A file is added with the same durable :meth:`Controller.add` the API uses
(stored first, then handed to the engine) and the ``[engine.watch]``
choices, and only then renamed ``NAME.added``; a file that is no torrent is
renamed ``NAME.invalid``. The rename is how the folder remembers what it has
done, and the add is idempotent, so a restart (or a crash between the add and
the rename) never adds a torrent twice and never loses a file: a file is
only ever renamed, and only once its outcome is settled.

The folder is polled rather than watched with inotify: polling works the same
on every filesystem (network shares included) and lets the stability rule
below see each file twice. A file still being written is left alone until
its size and modification time are the same in two consecutive scans;
a writer that pauses longer than ``poll_interval_s`` should write under a
dotfile name (ignored) and rename it when done, which is atomic.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from revaer_core.control.controller import Controller
from revaer_core.control.metainfo import read_metainfo
from revaer_core.control.requests import add_request
from revaer_core.errors import Conflict, InvalidInput, StoreUnavailable, TooLarge
from revaer_core.events import EventPayload, WatchFileRejected
from revaer_core.settings import Settings
from revaer_core.sources import AddedVia

log = logging.getLogger(__name__)

THREAD_NAME = "revaer-watch"
ADDED = ".added"
INVALID = ".invalid"
TORRENT = ".torrent"

#: (size, mtime_ns) of a file as one scan saw it.
Signature = tuple[int, int]
Publish = Callable[[EventPayload], object]


def is_candidate(name: str) -> bool:
    """Whether a directory entry named ``name`` is one the watch folder takes.

    Dotfiles are skipped so a writer can use a hidden name until it is done;
    ``NAME.added`` and ``NAME.invalid`` (and their ``.1``, ``.2`` forms) do
    not end in ``.torrent``, so what the folder renamed is never taken again.
    """
    return not name.startswith(".") and name.lower().endswith(TORRENT)


class WatchFolder:
    """Polls one folder on a background thread and adds every settled .torrent file in it.

    :meth:`start` creates the folder when it is missing and starts the thread;
    :meth:`stop` ends it. :meth:`scan` is one pass, for callers that drive it
    themselves (the thread is then not started).
    """

    def __init__(self, folder: Path, controller: Controller, settings: Settings, *, publish: Publish) -> None:
        self.folder = folder
        self._controller = controller
        self._engine = settings.engine
        self._watch = settings.engine.watch
        self._limit = settings.api.max_upload_bytes
        self._publish = publish
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, Signature] = {}  #: what the previous scan saw, by file name
        #: files whose outcome is settled (ADDED or INVALID) but whose rename failed: only the rename is retried
        self._settled: dict[str, tuple[str, Signature]] = {}
        #: the last problem logged per file, so a file left for later is logged once, not at every scan
        self._logged: dict[str, tuple[str, Signature]] = {}
        self._folder_problem: str | None = None  #: set while the folder cannot be read: warned once per outage

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Create the folder if it is missing, then scan it every ``poll_interval_s`` on a daemon thread."""
        self._create_folder()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        log.info(
            "watching %s for .torrent files every %g s (added %s%s)",
            self.folder,
            self._watch.poll_interval_s,
            "paused" if self._watch.paused else "started",
            f", labels {','.join(self._watch.labels)}" if self._watch.labels else "",
        )

    def stop(self, timeout: float = 1.0) -> bool:
        """End the thread; true once it has ended within ``timeout`` seconds.

        An idle thread ends at once. One in the middle of an add finishes that
        add first (it waits at most for the store to confirm), so the caller
        should give it until its own shutdown deadline before closing the engine.
        """
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the watch folder thread did not stop within %.1f s (an add is still waiting)", timeout)
            return False
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.scan()
            except Exception:  # the folder must keep being watched whatever one pass ran into
                log.exception("watch folder %s: a scan failed; the next one runs in %g s", self.folder, self.interval)
            if self._stopping.wait(self.interval):
                return

    @property
    def interval(self) -> float:
        return self._watch.poll_interval_s

    def _create_folder(self) -> None:
        """Made at start only: a folder that vanishes later may be an unmounted share, not to be shadowed."""
        try:
            self.folder.mkdir(parents=True)
        except FileExistsError:
            return
        except OSError as exc:
            self._folder_problem = str(exc)
            log.warning("watch folder %s cannot be created (%s); retried every %g s", self.folder, exc, self.interval)
            return
        log.info("watch folder %s did not exist; created it", self.folder)

    # -- one pass ----------------------------------------------------------------------------

    def scan(self) -> None:
        """One pass: take every file that kept its size and mtime since the previous pass.

        A file seen for the first time, or changed since, is only remembered;
        so is an empty one (a file just created). A store that does not
        confirm ends the pass: the other files would wait for it just as long.
        """
        listing = self._list()
        if listing is None:
            return
        previous, self._seen = self._seen, listing
        self._settled = {n: v for n, v in self._settled.items() if n in listing}
        self._logged = {n: v for n, v in self._logged.items() if n in listing}
        for name, signature in sorted(listing.items()):
            if self._stopping.is_set():
                return
            if signature[0] == 0 or previous.get(name) != signature:
                continue
            if not self._take(self.folder / name, signature):
                return

    def _list(self) -> dict[str, Signature] | None:
        """The candidate files in the folder by name, or ``None`` (warned once per outage) when it cannot be read."""
        found: dict[str, Signature] = {}
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if not is_candidate(entry.name):
                        continue
                    try:
                        if not entry.is_file():
                            continue  # a subfolder (or a device) is never taken
                        stat = entry.stat()
                    except OSError:
                        continue  # gone between the listing and the stat
                    found[entry.name] = (stat.st_size, stat.st_mtime_ns)
        except OSError as exc:
            if self._folder_problem is None:
                log.warning("watch folder %s cannot be read (%s); retried every %g s", self.folder, exc, self.interval)
            self._folder_problem = str(exc)
            return None
        if self._folder_problem is not None:
            log.info("watch folder %s can be read again", self.folder)
            self._folder_problem = None
        return found

    def _take(self, path: Path, signature: Signature) -> bool:
        """Add the settled file at ``path`` and rename it; false when the store did not confirm the add."""
        name = path.name
        settled = self._settled.get(name)
        if settled is not None and settled[1] == signature:
            self._rename(path, settled[0], signature)  # decided already; only its rename failed
            return True
        try:
            data = self._read(path, signature)
            if data is None:
                return True
            request = add_request(
                read_metainfo(data),
                self._engine,
                save_path=None if self._watch.save_path is None else str(self._watch.save_path),
                paused=self._watch.paused,
                labels=self._watch.labels,
            )
            added = self._controller.add(request, AddedVia.WATCH)
        except StoreUnavailable as exc:
            self._once(name, "store", signature, "watch folder: %s is left for a later scan: %s", name, exc)
            return False
        except Conflict as exc:  # e.g. the same torrent still being removed: it passes
            self._once(name, "conflict", signature, "watch folder: %s is left for a later scan: %s", name, exc)
            return True
        except InvalidInput as exc:
            self._reject(path, signature, str(exc))
            return True
        except Exception:  # an engine fault: the add was withdrawn, so the file waits for a later scan
            if self._first(name, "error", signature):
                log.exception("watch folder: adding %s failed; it is left for a later scan", name)
            return True
        status = added.status
        if added.created:
            log.info("watch folder: added %s -> torrent %s (%s)", name, status.id, status.name)
        else:
            log.info(
                "watch folder: %s is torrent %s (%s), already present; not added again", name, status.id, status.name
            )
        self._rename(path, ADDED, signature)
        return True

    def _read(self, path: Path, signature: Signature) -> bytes | None:
        """The file's bytes, or ``None`` when it changed or went away meanwhile (it is looked at again later).

        :raises TooLarge: the file is bigger than ``[api] max_upload_bytes``.
        """
        if signature[0] > self._limit:
            raise TooLarge(
                f"the .torrent is {signature[0]} bytes; the most accepted is {self._limit} (see [api] max_upload_bytes)"
            )
        try:
            with path.open("rb") as handle:
                data = handle.read(self._limit + 1)
                after = os.fstat(handle.fileno())
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._once(path.name, "read", signature, "watch folder: %s cannot be read (%s); retried", path.name, exc)
            return None
        if (after.st_size, after.st_mtime_ns) != signature or len(data) != signature[0]:
            return None  # written to since the scan: the stability rule starts over
        return data

    def _reject(self, path: Path, signature: Signature, reason: str) -> None:
        target = self._rename(path, INVALID, signature)
        log.warning(
            "watch folder: %s is not a torrent Revaer can add (%s)%s",
            path.name,
            reason,
            f"; renamed to {target.name}" if target is not None else "",
        )
        self._publish(WatchFileRejected(path=str(path), reason=reason))

    def _rename(self, path: Path, suffix: str, signature: Signature) -> Path | None:
        """Rename ``path`` to ``NAME<suffix>``, or the first free ``NAME<suffix>.N``; ``None`` if it failed.

        The outcome is remembered first, so a failed rename is retried at the
        next scan without adding or rejecting the file again.
        """
        self._settled[path.name] = (suffix, signature)
        base = path.name + suffix
        for target in (path.with_name(base if n == 0 else f"{base}.{n}") for n in itertools.count()):
            if not os.path.lexists(target):
                break
        try:
            path.rename(target)
        except FileNotFoundError:
            return None  # taken away by someone else: nothing is left to rename
        except OSError as exc:
            self._once(
                path.name,
                "rename",
                signature,
                "watch folder: %s cannot be renamed to %s (%s); retried",
                path.name,
                target.name,
                exc,
            )
            return None
        self._settled.pop(path.name, None)
        return target

    # -- logging once per file -----------------------------------------------------------------

    def _first(self, name: str, problem: str, signature: Signature) -> bool:
        """Whether ``problem`` is new for this file (as it is now); remembers it."""
        if self._logged.get(name) == (problem, signature):
            return False
        self._logged[name] = (problem, signature)
        return True

    def _once(self, name: str, problem: str, signature: Signature, message: str, *args: object) -> None:
        if self._first(name, problem, signature):
            log.warning(message, *args)
