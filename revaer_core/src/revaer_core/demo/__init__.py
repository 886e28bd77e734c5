"""``revaer demo``: the whole runtime on a real engine, stopped and started again, in under a minute.

It makes a payload and its .torrent, seeds them from a second libtorrent
session on 127.0.0.1, downloads them with Revaer's own engine (a live
progress bar), lets FsOps copy them into a library, stops the runtime, starts
it again, and prints the hydrated catalog and the FsOps job with its history:
the state survived the restart because the store kept it.

It runs on the store the settings select, or on PostgreSQL with an embedded
server of its own when they select none, and keeps a settings file naming
that store. It ends with commands to try next, each printed so that it runs as
it stands when pasted into a shell.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import click

from revaer_core.control.metainfo import read_metainfo
from revaer_core.control.requests import add_request
from revaer_core.daemon import Daemon
from revaer_core.errors import PluginError, RevaerError, StoreUnavailable
from revaer_core.events import Event, FsOpsCompleted, FsOpsFailed, ProgressUpdated, StateChanged
from revaer_core.health import Capability, StoreRole
from revaer_core.jobs import FsJob
from revaer_core.plugins import open_store
from revaer_core.redact import redact
from revaer_core.settings import RuntimeSettings, Settings, load_settings
from revaer_core.sources import AddedVia
from revaer_core.status import TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore

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
#: The demo's .torrent, kept in the demo directory for ``revaer torrents add``.
TORRENT_FILE = f"{PAYLOAD_NAME}.torrent"

POSTGRES = "postgres"
#: The store when the settings select none: its embedded server needs nothing set up.
DEFAULT_BACKEND = POSTGRES
#: Variables the demo sets aside, and why. The commands it prints unset them too, so they read what it wrote.
IGNORED_ENV: Mapping[str, str] = {
    "REVAER_DATABASE_URL": "the demo never writes to your database",
    "REVAER_DATA_DIR": "the demo keeps its data in its own directory",
}


def demo_backend(selected: RuntimeSettings) -> tuple[str, Mapping[str, Any], str | None]:
    """The backend the demo runs on, the ``[runtime.<backend>]`` table it writes, and a note on what it left out.

    The settings' choice wins, with its table, so the commands the demo
    prints afterwards open the store it wrote. PostgreSQL always gets an
    embedded server of the demo's own and no options: an operator's DSN
    points at their database.
    """
    name = DEFAULT_BACKEND if selected.backend == "none" else selected.backend
    options = selected.options_for(name)
    if name != POSTGRES:
        return name, options, None
    note = "[runtime.postgres] is ignored: the demo runs PostgreSQL on an embedded server of its own"
    return name, {}, note if options else None


def revaer_argv() -> list[str]:
    """How a shell runs the ``revaer`` of this Python: plain ``revaer`` only when PATH finds that very script.

    ``nox -s demo`` runs the demo with the session's virtualenv on PATH, but
    the user's shell afterwards has no such PATH: inside a nox session
    (``NOX_CURRENT_SESSION``) the path is always spelt out. From a source
    tree without the script: ``python -m revaer_core``.
    """
    beside = shutil.which("revaer", path=str(Path(sys.executable).parent))
    if beside is None:
        return [os.path.abspath(sys.executable), "-m", "revaer_core"]
    on_path = None if "NOX_CURRENT_SESSION" in os.environ else shutil.which("revaer")
    if on_path is not None and os.path.samefile(on_path, beside):
        return ["revaer"]
    return [os.path.abspath(beside)]


@attrs.frozen
class Shell:
    """Commands as a user pastes them: this ``revaer``, the demo's settings file, every word quoted."""

    revaer: tuple[str, ...]
    config: Path
    unset: tuple[str, ...] = ()  #: variables the demo set aside, unset with ``env -u``

    def command(self, *args: str) -> str:
        env = ["env", *(w for var in self.unset for w in ("-u", var))] if self.unset else []
        return shlex.join([*env, *self.revaer, "--config", str(self.config), *args])


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    """A bare key where TOML allows one (backend names may hold dots), else a quoted one."""
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)


def toml_value(value: object) -> str:
    """``value`` in TOML: whatever tomllib reads a table into (and paths) is written back as it came."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf and nan included: TOML spells them as Python does
    if isinstance(value, str | Path):
        # a JSON string is a TOML basic string, except that TOML wants DEL escaped too
        return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, dt.date | dt.time):  # a datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


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


def demo_settings(
    root: Path, backend: str, options: Mapping[str, Any], data_dir: Path, *, persistence: bool, header: str
) -> str:
    """The settings file the demo runs with; kept so ``revaer --config`` opens the same store afterwards."""
    runtime: dict[str, object] = {
        "backend": backend,
        "data_dir": data_dir,
        "flush_interval_ms": 100,
        "shutdown_deadline_s": 10,
    }
    if not persistence:
        runtime["persistence"] = False
    tables: dict[str, Mapping[str, object]] = {"runtime": runtime}
    if options:
        tables[f"runtime.{toml_key(backend)}"] = options
    tables["engine"] = {
        "listen_interfaces": "127.0.0.1:0",
        "download_dir": root / "downloads",
        "alert_poll_ms": 20,
        "status_interval_ms": 100,
        "resume_save_interval_s": 1,
    }
    tables["fsops"] = {
        "enabled": True,
        "library_root": root / "library",
        "transfer_mode": "copy",
        "preset": "skip_extras",
    }
    body = "\n".join(
        f"[{name}]\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())
        for name, table in tables.items()
    )
    return f"# {header}\n{body}"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` for its owner's eyes only: the file may hold a copy of a backend's options, secrets and all."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that was there keeps its old mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def describe_store(store: RuntimeStore, data_dir: Path) -> str:
    """The store's name and where its data is, in the backend's own words, passwords masked."""
    health = store.health()
    if health.facts.get("mode") == "embedded":  # the PostgreSQL store's own server keeps its cluster here
        where = f"embedded PostgreSQL, data in {data_dir / POSTGRES}"
    else:
        where = "; ".join([health.detail, *(f"{k} {v}" for k, v in health.facts.items())])
    return redact(f"{store.backend or 'none'} ({where})")


def open_demo_store(settings: Settings, revaer: str) -> RuntimeStore:
    """The demo's store, opened as a daemon's; an embedded server that cannot start is one line with a way round."""
    try:
        return open_store(settings.runtime, StoreRole.DAEMON)
    except (PluginError, StoreUnavailable) as exc:
        if settings.runtime.selected_backend != POSTGRES:
            raise
        raise RevaerError(
            f"demo: the embedded PostgreSQL store cannot be used: {exc}; or run the demo on the memory store "
            f"(revaer-runtime-memory): REVAER_RUNTIME_BACKEND=memory {revaer} demo"
        ) from exc


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


def _note(text: str) -> None:
    click.echo(f"  {text}", err=True)


@attrs.frozen
class DemoResult:
    """What the demo saw, for tests to check."""

    torrent_id: UUID
    before: dict[UUID, TorrentStatus]  #: the catalog before the restart
    after: dict[UUID, TorrentStatus]  #: the catalog hydrated after it
    job: FsJob | None
    restored: int  #: torrents the engine restored from stored resume data


def run_demo(root: Path, selected: RuntimeSettings | None = None, *, fresh: bool = True) -> DemoResult:
    """Run the demo in ``root`` on the store ``selected`` names; returns what it checked (for tests).

    :param selected: the settings' ``[runtime]`` choice: backend, its table and the master switch.
    :raises RevaerError: one line on any failure; a :class:`PluginError` when libtorrent or the store is missing.
    """
    try:
        from revaer_core.demo.seeder import FAST_SESSION, LoopbackTorrent, Seeder, make_payload
    except ImportError as exc:
        raise PluginError(
            f"the demo downloads with libtorrent, which cannot be imported ({exc}): "
            "pip install 'revaer-core[libtorrent]'"
        ) from None
    selected = selected or RuntimeSettings()
    backend, options, left_out = demo_backend(selected)

    if fresh and (root / MARKER).is_file():
        shutil.rmtree(root)  # only a directory an earlier demo made: it holds the marker
    elif fresh and root.exists() and any(root.iterdir()):
        raise RevaerError(f"demo directory {root} is not empty and was not made by the demo; pick another with --dir")
    root.mkdir(parents=True, exist_ok=True)
    ignored = tuple(var for var in IGNORED_ENV if os.environ.pop(var, None) is not None)
    data_dir = data_dir_for(root) if backend == POSTGRES else root / "data"
    if fresh and data_dir.parent != root and data_dir.exists():
        shutil.rmtree(data_dir)  # the data of an earlier run of this demo directory
    revaer = tuple(revaer_argv())
    shell = Shell(revaer=revaer, config=root / MARKER, unset=ignored)
    header = "Written by `revaer demo`: `revaer --config` with this file opens the demo's store."
    text = demo_settings(root, backend, options, data_dir, persistence=selected.persistence, header=header)
    write_private(root / MARKER, text)
    settings = load_settings(root / MARKER)
    _say(f"Revaer demo in {root}")
    for var in ignored:
        _note(f"{var} is ignored: {IGNORED_ENV[var]}")
    if left_out:
        _note(left_out)

    store = open_demo_store(settings, shlex.join(revaer))
    try:
        durable = Capability.DURABLE in store.capabilities()
        _note(f"store: {describe_store(store, data_dir)}")
        if data_dir.parent != root and store.persistent:
            _note(f"(outside the demo directory: the embedded server runs as 'postgres', who cannot reach {root})")

        torrent = LoopbackTorrent.of(make_payload(root / "seed", PAYLOAD_NAME, PAYLOAD), piece_size=64 * 1024)
        torrent_file = torrent.write(root / TORRENT_FILE)
        overrides = {**FAST_SESSION, "download_rate_limit": RATE_LIMIT, "ignore_limits_on_local_network": False}
        with Seeder(torrent) as seeder:
            _say(f"1. Seeding a {torrent.size / 1024 / 1024:.1f} MiB torrent from a second session on 127.0.0.1")
            first = Daemon(settings, engine="libtorrent", serve_api=False, store=store, engine_overrides=overrides)
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
                    payload = event.payload
                    if isinstance(payload, FsOpsCompleted | FsOpsFailed) and payload.torrent_id == torrent_id:
                        outcome.append(payload)

                first.bus.subscribe(on_fsops)
                first.engine.connect_peer(torrent_id, seeder.endpoint)  # type: ignore[attr-defined]
                wait_for(lambda: bool(outcome), "the download and FsOps to finish")
                hide_bar()
                click.echo("", err=True)
                result = outcome[0]
                if isinstance(result, FsOpsFailed):
                    raise RevaerError(f"demo: FsOps failed: {result.message}")
                _say(f"3. FsOps copied it into the library: {result.destination}")
                wait_for(
                    lambda: first.orchestrator is not None and first.orchestrator.flush(1.0), "the store to catch up"
                )
                before = first.orchestrator.catalog.snapshot()
            finally:
                report = first.stop()
        cleanly = "cleanly" if report.clean else "NOT cleanly"
        _say(f"4. Stopped the runtime ({cleanly}, in {report.seconds:.2f} s); starting it again")
        if durable:
            store.close()
            store = open_demo_store(settings, shlex.join(revaer))  # the new runtime gets only what the store kept
        elif store.persistent:
            _say(f"   on the same {backend} store: it keeps its data in this process only")

        second = Daemon(settings, engine="libtorrent", serve_api=False, store=store, engine_overrides=FAST_SESSION)
        second.start()
        try:
            assert second.orchestrator is not None
            after = second.orchestrator.catalog.snapshot()
            restored = second.reconciled.matched if second.reconciled else 0
            _say(f"   the engine restored {restored} torrent(s) from the stored resume data, without a recheck")
            job = store.get_job(torrent_id)
            history = store.job_history(torrent_id)
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
        persisted = store.persistent
        where = describe_store(store, data_dir)
    finally:
        store.close()

    lost = _lost(before.get(torrent_id), after.get(torrent_id), job)
    if not persisted:
        _say("The runtime has no persistent store, so the catalog started empty.")
    elif lost:
        _say(f"WARNING: the state after the restart differs from before: {lost}.")
    elif durable:
        _say("The state survived the restart.")
    else:
        _say(f"The state survived the restart; the {backend} store held it in this process only, so it is gone now.")
    click.echo(
        f"\n  demo directory  {root}\n  settings        {root / MARKER}\n  library         {root / 'library'}\n"
        f"  torrent file    {torrent_file}\n  store           {where}\n",
        err=True,
    )
    _print_next_steps(shell, torrent_id, torrent_file, durable=durable)
    if persisted and lost:
        raise RevaerError(f"demo: the state after the restart differs from the state before it: {lost}")
    return DemoResult(torrent_id=torrent_id, before=before, after=after, job=job, restored=restored)


#: Fields that move while a torrent seeds: a restart may change them.
MOVING = frozenset({"rates", "last_updated"})


def _lost(before: TorrentStatus | None, after: TorrentStatus | None, job: FsJob | None) -> str | None:
    """What the restart lost, named so that a failed demo says where to look; ``None`` when nothing."""
    if before is None or after is None:
        return "the torrent is not in the catalog"
    changed = [
        f.name
        for f in attrs.fields(TorrentStatus)
        if f.name not in MOVING and getattr(before, f.name) != getattr(after, f.name)
    ]
    if after.state is not TorrentState.COMPLETED and "state" not in changed:
        changed.append("state")
    if changed:
        return f"the torrent's {', '.join(changed)} changed"
    return "the FsOps job is missing" if job is None else None


def _print_catalog(catalog: dict[UUID, TorrentStatus]) -> None:
    for status in catalog.values():
        size = status.progress.total / 1024 / 1024
        click.echo(f"  {status.id}  {status.state.value:<10} {size:6.1f} MiB  {status.name}  -> {status.library_path}")


def _print_next_steps(shell: Shell, torrent_id: UUID, torrent_file: Path, *, durable: bool) -> None:
    """Commands to try, each runnable as printed: reads of what the store kept (if it kept it), then the daemon."""
    short = str(torrent_id)[:8]  # a unique prefix names a torrent wherever an ID does
    if durable:
        _say("Read what the store kept (no daemon needed):")
        for args in (("torrents", "list"), ("torrents", "show", short), ("fsops", "show", str(torrent_id))):
            _note(f"$ {shell.command(*args)}")
    _say(
        "Start the daemon again (Ctrl+C stops it):"
        if durable
        else "Start the daemon (nothing was kept, so it starts empty):"
    )
    _note(f"$ {shell.command('run')}")
    _say("and, from another terminal, drive it:")
    for args in (("torrents", "add", str(torrent_file)), ("torrents", "pause", short), ("torrents", "resume", short)):
        _note(f"$ {shell.command(*args)}")
