"""``revaer demo``: the whole runtime on a real engine, stopped and started again, in under a minute.

It makes a payload and its .torrent, seeds them from a second libtorrent
session on 127.0.0.1, downloads them with Revaer's own engine (a live
progress bar), lets FsOps copy them into a library, stops the runtime, starts
it again, and prints the hydrated catalog and the FsOps job with its history:
the state survived the restart because the store kept it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import attrs
import click

from revaer_core.control.metainfo import read_metainfo
from revaer_core.control.requests import add_request
from revaer_core.daemon import Daemon
from revaer_core.errors import RevaerError
from revaer_core.events import Event, FsOpsCompleted, FsOpsFailed, ProgressUpdated, StateChanged
from revaer_core.jobs import FsJob
from revaer_core.redact import redact
from revaer_core.settings import Settings, load_settings
from revaer_core.sources import AddedVia
from revaer_core.status import TorrentState, TorrentStatus

#: Payload files: a nested layout with a sample, so FsOps has a directory to flatten and a file to skip.
PAYLOAD_NAME = "Revaer Demo (2026)"
PAYLOAD: dict[str, int] = {
    "Revaer.Demo.2026.mkv": 6 * 1024 * 1024,
    "Revaer.Demo.2026.nfo": 2 * 1024,
    "Sample/sample.mkv": 512 * 1024,
}
#: The demo session's download limit: a loopback transfer is instant, and a progress bar should be seen.
RATE_LIMIT = 4 * 1024 * 1024
TIMEOUT_S = 45.0
MARKER = "revaer.toml"


def default_backend() -> tuple[str, str]:
    """The embedded PostgreSQL store when its plugin is installed; else memory, with why."""
    if importlib.util.find_spec("revaer_runtime_pg") is not None:
        return "postgres", "PostgreSQL, on an embedded server of the demo's own"
    return "memory", "memory: revaer-runtime-pg is not installed, so nothing would survive a real restart"


def reachable_by_others(path: Path) -> bool:
    """Whether users other than the owner can pass through every directory above ``path``."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents if p.exists())


def data_dir_for(root: Path) -> Path:
    """Where the store keeps its files: in the demo directory, unless the embedded server could not reach it.

    As root, the embedded PostgreSQL runs as the ``postgres`` user, who must be
    able to pass through every parent directory (a checkout under ``/root``
    is not); its data then goes to a directory of its own under the system's
    temporary directory.
    """
    data = root / "data"
    if os.geteuid() != 0 or reachable_by_others(data):
        return data
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    elsewhere = Path(tempfile.gettempdir()) / f"revaer-demo-{digest}"
    elsewhere.mkdir(mode=0o755, exist_ok=True)
    elsewhere.chmod(0o755)
    return elsewhere / "data"


def demo_settings(root: Path, backend: str, data_dir: Path) -> str:
    """The settings file the demo runs with; kept so ``revaer --config`` reads the same store afterwards."""
    return f"""# Written by `revaer demo`. Try: revaer --config {root / MARKER} torrents list
[runtime]
backend = "{backend}"
data_dir = "{data_dir}"
flush_interval_ms = 100
shutdown_deadline_s = 10

[engine]
listen_interfaces = "127.0.0.1:0"
download_dir = "{root / "downloads"}"
alert_poll_ms = 20
status_interval_ms = 100
resume_save_interval_s = 1

[fsops]
enabled = true
library_root = "{root / "library"}"
transfer_mode = "copy"
preset = "skip_extras"
"""


class ProgressBar:
    """One line on stderr redrawn from progress events, and the state the torrent is in."""

    def __init__(self, torrent_id: UUID, width: int = 32) -> None:
        self._id = torrent_id
        self._width = width
        self.state = "queued"

    def __call__(self, event: Event) -> None:
        payload = event.payload
        if getattr(payload, "torrent_id", None) != self._id:
            return
        if isinstance(payload, StateChanged):
            self.state = payload.state.value
        if isinstance(payload, ProgressUpdated) and payload.total:
            done = payload.downloaded / payload.total
            bar = "#" * int(done * self._width)
            click.echo(f"\r  [{bar:<{self._width}}] {done:6.1%}  {self.state:<12}", nl=False, err=True)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RevaerError(f"demo: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _say(text: str) -> None:
    click.secho(text, bold=True, err=True)


@attrs.frozen
class DemoResult:
    """What the demo saw, for tests to check."""

    torrent_id: UUID
    before: dict[UUID, TorrentStatus]  #: the catalog before the restart
    after: dict[UUID, TorrentStatus]  #: the catalog hydrated after it
    job: FsJob | None
    restored: int  #: torrents the engine restored from stored resume data


def run_demo(root: Path, *, fresh: bool = True) -> DemoResult:
    """Run the demo in ``root``; returns what it checked (for tests), raising RevaerError on a failure."""
    from revaer_core.engine.loopback import FAST_SESSION, LoopbackTorrent, Seeder, make_payload

    if fresh and (root / MARKER).is_file():
        shutil.rmtree(root)  # only a directory an earlier demo made: it holds the marker
    elif fresh and root.exists() and any(root.iterdir()):
        raise RevaerError(f"demo directory {root} is not empty and was not made by the demo; pick another with --dir")
    root.mkdir(parents=True, exist_ok=True)
    if os.environ.pop("REVAER_DATABASE_URL", None):
        click.echo("  REVAER_DATABASE_URL is ignored: the demo never writes to your database", err=True)
    backend, why = default_backend()
    data_dir = data_dir_for(root) if backend == "postgres" else root / "data"
    if fresh and data_dir.parent != root and data_dir.exists():
        shutil.rmtree(data_dir)  # the data of an earlier run of this demo directory
    (root / MARKER).write_text(demo_settings(root, backend, data_dir), encoding="utf-8")
    settings = load_settings(root / MARKER)
    _say(f"Revaer demo in {root}")
    click.echo(f"  store: {why}", err=True)
    if data_dir.parent != root:
        click.echo(
            f"  (the embedded server runs as 'postgres', who cannot reach {root}: its data is in {data_dir})", err=True
        )

    torrent = LoopbackTorrent.of(make_payload(root / "seed", PAYLOAD_NAME, PAYLOAD), piece_size=64 * 1024)
    overrides = {**FAST_SESSION, "download_rate_limit": RATE_LIMIT, "ignore_limits_on_local_network": False}
    with Seeder(torrent) as seeder:
        _say(f"1. Seeding a {torrent.size / 1024 / 1024:.1f} MiB torrent from a second session on 127.0.0.1")
        first = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=overrides)
        first.start()
        try:
            assert first.engine is not None and first.orchestrator is not None and first.controller is not None
            _say("2. Adding it (stored with its source before the add returns) and downloading it")
            outcome: list[FsOpsCompleted | FsOpsFailed] = []
            request = add_request(read_metainfo(torrent.metainfo), settings.engine, labels=["demo"])
            torrent_id = first.controller.add(request, AddedVia.CLI).status.id
            bar = ProgressBar(torrent_id)
            hide_bar = first.bus.subscribe(bar)

            def on_fsops(event: Event) -> None:
                if isinstance(event.payload, FsOpsCompleted | FsOpsFailed) and event.payload.torrent_id == torrent_id:
                    outcome.append(event.payload)

            first.bus.subscribe(on_fsops)
            first.engine.connect_peer(torrent_id, seeder.endpoint)  # type: ignore[attr-defined]
            wait_for(lambda: bool(outcome), "the download and FsOps to finish")
            hide_bar()
            click.echo("", err=True)
            result = outcome[0]
            if isinstance(result, FsOpsFailed):
                raise RevaerError(f"demo: FsOps failed: {result.message}")
            _say(f"3. FsOps copied it into the library: {result.destination}")
            wait_for(lambda: first.orchestrator is not None and first.orchestrator.flush(1.0), "the store to catch up")
            before = first.orchestrator.catalog.snapshot()
        finally:
            report = first.stop()
    cleanly = "cleanly" if report.clean else "NOT cleanly"
    _say(f"4. Stopped the runtime ({cleanly}, in {report.seconds:.2f} s); starting it again")

    second = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
    second.start()
    try:
        assert second.orchestrator is not None and second.store is not None
        after = second.orchestrator.catalog.snapshot()
        restored = second.reconciled.matched if second.reconciled else 0
        _say(f"   the engine restored {restored} torrent(s) from the stored resume data, without a recheck")
        job = second.store.get_job(torrent_id)
        history = second.store.job_history(torrent_id)
        status = after.get(torrent_id)
        _say("5. After the restart: the hydrated catalog")
        _print_catalog(after)
        _say("   and the FsOps job with its history")
        if job is not None:
            click.echo(f"  {job.status.value}: {job.source} -> {job.destination}")
            click.echo(f"  transfer mode {job.transfer_mode}, attempt {job.attempt}")
        for entry in history:
            click.echo(f"    #{entry.seq} {entry.at:%H:%M:%S.%f} {entry.event.value:<10} -> {entry.status.value}")
    finally:
        second.stop()
    same = _same_torrent(before.get(torrent_id), status)
    persisted = second.store is not None and second.store.persistent
    _say(
        "The state survived the restart."
        if same and job is not None
        else "The runtime has no persistent store, so the catalog started empty."
        if not persisted
        else "WARNING: the state after the restart differs from before."
    )
    click.echo(
        f"\n  demo directory  {root}\n  settings        {root / MARKER}\n  library         {root / 'library'}\n"
        f"  store           {redact(_store_location(settings, backend))}\n"
        f"  try             revaer --config {root / MARKER} torrents list\n"
        f"                  revaer --config {root / MARKER} fsops show {torrent_id}",
        err=True,
    )
    if persisted and not (same and job is not None):
        raise RevaerError("demo: the state after the restart differs from the state before it")
    return DemoResult(torrent_id=torrent_id, before=before, after=after, job=job, restored=restored)


def _same_torrent(before: TorrentStatus | None, after: TorrentStatus | None) -> bool:
    """Equal but for fields that move while a torrent seeds (rates, last update)."""
    if before is None or after is None:
        return False
    settled = attrs.evolve(after, rates=before.rates, last_updated=before.last_updated)
    return settled == before and after.state is TorrentState.COMPLETED


def _print_catalog(catalog: dict[UUID, TorrentStatus]) -> None:
    for status in catalog.values():
        size = status.progress.total / 1024 / 1024
        click.echo(f"  {status.id}  {status.state.value:<10} {size:6.1f} MiB  {status.name}  -> {status.library_path}")


def _store_location(settings: Settings, backend: str) -> str:
    if backend == "memory":
        return "process memory (gone now)"
    return f"embedded PostgreSQL in {settings.runtime.data_dir / 'postgres'}"
