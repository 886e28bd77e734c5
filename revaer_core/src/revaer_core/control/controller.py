"""The control operations: what an operator does to a running daemon, in one place.

The HTTP API serves these and the CLI calls them through it; the watch folder
calls them directly. Every operation that changes what the user chose is
acknowledged only once the store holds it (the writer's ticket is waited
for), then applied to the engine: a crash after the answer loses nothing,
and a crash before it leaves the engine as it was.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import attrs

from revaer_core.bus import EventBus
from revaer_core.control.metainfo import TorrentInfo
from revaer_core.control.refs import resolve
from revaer_core.control.requests import AddRequest, OptionsChange, dense, file_priorities_of
from revaer_core.engine import AddOptions, Engine, TorrentSource
from revaer_core.errors import Conflict, InvalidInput, NotFound, RetryRefused, StoreUnavailable
from revaer_core.events import OperatorAction
from revaer_core.fsops.service import FsOpsService
from revaer_core.jobs import FsJob, TransferMode
from revaer_core.orchestrator import TorrentOrchestrator
from revaer_core.orchestrator.orchestrator import StillRemoving
from revaer_core.settings import Settings
from revaer_core.sources import DEFAULT_PRIORITY, AddedVia, StoredSource
from revaer_core.status import FileEntry, Progress, TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore

log = logging.getLogger(__name__)

#: Longest an operation waits for the store to confirm its write before it answers 503.
STORE_CONFIRM_TIMEOUT_S = 10.0


@attrs.frozen
class Added:
    """The torrent an add left in the runtime, and whether the add created it (else it was there)."""

    status: TorrentStatus
    created: bool


def _files_of(info: TorrentInfo, priorities: Mapping[int, int]) -> tuple[FileEntry, ...] | None:
    if info.files is None:
        return None
    entries = []
    for f in info.files:
        if not f.pad:
            priority = priorities.get(f.index, DEFAULT_PRIORITY)
            entries.append(FileEntry(index=f.index, path=f.path, size=f.size, priority=priority, selected=priority > 0))
    return tuple(entries)


def admission(request: AddRequest, via: AddedVia, now: datetime) -> tuple[TorrentStatus, StoredSource]:
    """The status and source an add stores: the one shape whether the daemon or ``revaer import`` stores it."""
    info = request.info
    files = _files_of(info, request.file_priorities)
    wanted = sum(f.size for f in files or () if f.selected)
    state = TorrentState.FETCHING_METADATA if info.files is None else TorrentState.QUEUED
    status = TorrentStatus(
        id=info.torrent_id,
        added_at=now,
        last_updated=now,
        name=info.name,
        state=TorrentState.STOPPED if request.paused else state,
        progress=Progress(total=wanted),
        files=files,
        download_dir=str(request.save_path),
        sequential=request.sequential,
        info_hash=info.info_hash,
        paused=request.paused,
        labels=request.labels,
        download_limit=request.download_limit,
        upload_limit=request.upload_limit,
    )
    count = None if info.files is None else len(info.files)
    source = StoredSource(
        torrent_id=info.torrent_id,
        added_at=now,
        metainfo=info.metainfo,
        magnet=info.magnet,
        file_priorities=dense(request.file_priorities, count) if request.file_priorities else (),
        added_via=via,
    )
    return status, source


class Controller:
    """Adds, removes, pauses, resumes, rechecks, reannounces and changes torrents; retries FsOps jobs."""

    def __init__(
        self,
        *,
        engine: Engine,
        orchestrator: TorrentOrchestrator,
        settings: Settings,
        bus: EventBus,
        store: RuntimeStore,
        fsops: FsOpsService | None = None,
        confirm_timeout_s: float = STORE_CONFIRM_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self._orchestrator = orchestrator
        self.settings = settings
        self._bus = bus
        self._store = store
        self._fsops = fsops
        self._timeout = confirm_timeout_s
        self._adding = threading.Lock()  # the check "is it there?" and the admission are one step

    @property
    def catalog(self) -> Mapping[UUID, TorrentStatus]:
        return self._orchestrator.catalog

    # -- naming --------------------------------------------------------------------------

    def resolve(self, ref: str) -> TorrentStatus:
        """The torrent ``ref`` names (UUID, or a unique prefix of it or of the info-hash)."""
        return resolve(ref, self._orchestrator.catalog.snapshot().values())

    # -- add --------------------------------------------------------------------------------

    def add(self, request: AddRequest, via: AddedVia) -> Added:
        """Add a torrent durably: stored (status, choices and source) first, then handed to the engine.

        A torrent already there is returned unchanged (``created`` false).
        """
        info = request.info
        torrent_id = info.torrent_id
        with self._adding:
            existing = self.catalog.get(torrent_id)
            if existing is not None:
                return Added(existing, created=False)
            status, source = admission(request, via, datetime.now(UTC))
            try:
                ticket = self._orchestrator.admit(status, source)
            except StillRemoving:
                raise Conflict(f"torrent {torrent_id} is still being removed; add it again in a moment") from None
        if not self._orchestrator.written(ticket, self._timeout):
            self._withdraw(torrent_id)
            raise StoreUnavailable(
                f"the runtime store did not confirm the add within {self._timeout:.0f} s, so torrent {torrent_id} "
                "was not added; check 'revaer runtime status' and add it again"
            )
        try:
            self._engine.add(
                TorrentSource(metainfo=info.metainfo, magnet=info.magnet, resume_data=request.resume_data),
                AddOptions(
                    save_path=request.save_path,
                    paused=request.paused,
                    sequential=request.sequential,
                    file_priorities=source.file_priorities,
                    download_limit=request.download_limit,
                    upload_limit=request.upload_limit,
                ),
            )
        except Exception:
            self._withdraw(torrent_id)
            raise
        if request.resume_data is not None:
            self._keep_resume_data(torrent_id, request.resume_data)
        self._announce(torrent_id, "added", via, _add_changes(request))
        return Added(self.catalog.get(torrent_id, status), created=True)

    def _keep_resume_data(self, torrent_id: UUID, data: bytes) -> None:
        """Store imported resume data with the torrent, so a crash before the engine's own save spares the recheck."""
        try:
            self._store.save_resume_data(torrent_id, data)
        except Exception as exc:  # the engine saves its own shortly; the add stands
            log.warning(
                "torrent %s: its imported resume data is not stored yet (%s); the engine saves it", torrent_id, exc
            )

    def _withdraw(self, torrent_id: UUID) -> None:
        """Undo an admission the engine never took: the store forgets it too."""
        self._orchestrator.forget(torrent_id)
        self._orchestrator.confirm_gone(torrent_id)

    # -- actions on a torrent that is there ---------------------------------------------------

    def remove(self, ref: str, *, with_data: bool, via: AddedVia) -> TorrentStatus:
        """Remove a torrent from the store and the engine (and its files with ``with_data``)."""
        status = self.resolve(ref)
        ticket = self._orchestrator.forget(status.id)
        if self._engine.has(status.id):
            self._engine.remove(status.id, with_data=with_data)
        else:
            self._orchestrator.confirm_gone(status.id)  # no removal will come from the engine
        self._announce(status.id, "removed", via, {"with_data": str(with_data).lower()})
        self._confirm(ticket, f"the removal of torrent {status.id}")
        return status

    def pause(self, ref: str, *, via: AddedVia) -> TorrentStatus:
        status = self._choose(ref, lambda s: attrs.evolve(s, paused=True))
        self._engine.pause(status.id)
        self._announce(status.id, "paused", via)
        return status

    def resume(self, ref: str, *, via: AddedVia) -> TorrentStatus:
        status = self._choose(ref, lambda s: attrs.evolve(s, paused=False))
        self._engine.resume(status.id)
        self._announce(status.id, "resumed", via)
        return status

    def recheck(self, ref: str, *, via: AddedVia) -> TorrentStatus:
        status = self._in_engine(ref)
        self._engine.recheck(status.id)
        self._announce(status.id, "rechecked", via)
        return status

    def reannounce(self, ref: str, *, via: AddedVia) -> TorrentStatus:
        status = self._in_engine(ref)
        self._engine.reannounce(status.id)
        self._announce(status.id, "reannounced", via)
        return status

    def set_options(self, ref: str, change: OptionsChange, *, via: AddedVia) -> TorrentStatus:
        """Change sequential mode, limits or labels; what is not named stays as it is."""
        if change.empty:
            raise InvalidInput("nothing to change: name at least one of sequential, limits or labels")

        def edit(s: TorrentStatus) -> TorrentStatus:
            return attrs.evolve(
                s,
                sequential=s.sequential if change.sequential is None else change.sequential,
                download_limit=None if change.clear_download_limit else (change.download_limit or s.download_limit),
                upload_limit=None if change.clear_upload_limit else (change.upload_limit or s.upload_limit),
                labels=s.labels if change.labels is None else change.labels,
            )

        status = self._choose(ref, edit)
        if change.sequential is not None:
            self._engine.set_sequential(status.id, status.sequential)
        if change.download_limit or change.upload_limit or change.clear_download_limit or change.clear_upload_limit:
            self._engine.set_limits(status.id, status.download_limit, status.upload_limit)
        self._announce(status.id, "options_changed", via, change.describe())
        return status

    def set_files(
        self, ref: str, *, skip: tuple[int, ...] = (), priorities: Mapping[int, int] | None = None, via: AddedVia
    ) -> TorrentStatus:
        """Set file priorities by index (a skipped file gets 0); the files must be known."""
        current = self.resolve(ref)
        if current.files is None:
            raise Conflict(f"torrent {current.id} has no metadata yet, so its files are unknown; try again later")
        chosen = file_priorities_of([f.index for f in current.files], skip, priorities or {})
        if not chosen:
            raise InvalidInput("nothing to change: name files to skip or priorities to set")

        def edit(s: TorrentStatus) -> TorrentStatus:
            files = tuple(
                attrs.evolve(f, priority=chosen[f.index], selected=chosen[f.index] > 0) if f.index in chosen else f
                for f in s.files or ()
            )
            return attrs.evolve(s, files=files)

        status = self._choose(ref, edit)
        self._engine.set_file_priorities(status.id, chosen)
        self._announce(status.id, "files_changed", via, {str(i): str(p) for i, p in sorted(chosen.items())})
        return status

    # -- FsOps ------------------------------------------------------------------------------------

    def retry_job(self, torrent_id: UUID, *, via: AddedVia) -> FsJob:
        """Start the failed FsOps job of a torrent again now (attempt + 1), through the FsOps service."""
        from revaer_core.api import operations

        if self._fsops is None or not self._fsops.enabled:
            return operations.retry_job(self._store, torrent_id)  # pending: FsOps runs it when it is on
        if self._store.get_job(torrent_id) is None:
            raise NotFound(f"no FsOps job for torrent {torrent_id}")
        try:
            self._fsops.retry(torrent_id)
        except InvalidInput as exc:
            raise RetryRefused(str(exc)) from None
        self._announce(torrent_id, "fsops_retried", via)
        return operations.job_detail(self._store, torrent_id).job

    def on_library_path(self, torrent_id: UUID, library_path: str) -> None:
        """FsOps moved a torrent into the library: in ``move`` mode the engine seeds it from there."""
        if self.settings.fsops.transfer_mode is not TransferMode.MOVE:
            return
        status = self.catalog.get(torrent_id)
        if status is None:
            return
        save_path = _seeding_root(status, Path(library_path))
        if save_path is None:
            log.warning(
                "torrent %s: FsOps moved it to %s in a layout the torrent does not have (flattened, extracted or "
                "filtered), so it cannot seed from there",
                torrent_id,
                library_path,
            )
            return
        _, ticket = self._orchestrator.change(torrent_id, lambda s: attrs.evolve(s, download_dir=str(save_path)))
        self._engine.relocate(torrent_id, save_path)
        if not self._orchestrator.written(ticket, self._timeout):
            log.warning("torrent %s: its new save path %s is not stored yet; retried", torrent_id, save_path)
        log.info("torrent %s: seeds from %s now", torrent_id, save_path)

    # -- helpers ----------------------------------------------------------------------------------

    def _in_engine(self, ref: str) -> TorrentStatus:
        status = self.resolve(ref)
        if not self._engine.has(status.id):
            raise Conflict(f"torrent {status.id} is not in the engine ({status.failure or status.state.value})")
        return status

    def _choose(self, ref: str, edit: Callable[[TorrentStatus], TorrentStatus]) -> TorrentStatus:
        """Apply an operator's choice to the status and wait until the store holds it."""
        status = self.resolve(ref)
        try:
            changed, ticket = self._orchestrator.change(status.id, edit)
        except KeyError:
            raise NotFound(f"torrent {status.id} was removed meanwhile") from None
        self._confirm(ticket, f"the change to torrent {status.id}")
        return changed

    def _confirm(self, ticket: int, what: str) -> None:
        if not self._orchestrator.written(ticket, self._timeout):
            raise StoreUnavailable(
                f"the runtime store did not confirm {what} within {self._timeout:.0f} s; it is applied and kept, "
                "and written when the store answers (see 'revaer runtime status')"
            )

    def _announce(self, torrent_id: UUID, action: str, via: AddedVia, changes: Mapping[str, str] | None = None) -> None:
        self._bus.publish(OperatorAction(torrent_id=torrent_id, action=action, via=via.value, changes=changes or {}))


def _add_changes(request: AddRequest) -> dict[str, str]:
    out = {"paused": str(request.paused).lower(), "save_path": str(request.save_path)}
    if request.sequential:
        out["sequential"] = "true"
    if request.labels:
        out["labels"] = ",".join(request.labels)
    if request.file_priorities:
        out["file_priorities"] = ",".join(f"{i}={p}" for i, p in sorted(request.file_priorities.items()))
    for key in ("download_limit", "upload_limit"):
        if getattr(request, key) is not None:
            out[key] = str(getattr(request, key))
    return out


def _seeding_root(status: TorrentStatus, library_path: Path) -> Path | None:
    """The save path under which the torrent's files lie as the torrent lays them out, if they do."""
    root = library_path.parent
    for f in status.files or ():
        if f.selected and f.priority > 0:
            try:
                if (root / f.path).stat().st_size != f.size:
                    return None
            except OSError:
                return None
    return root if status.files else None
