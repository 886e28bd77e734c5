"""``revaer run``: the daemon, until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType

import click

from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.daemon import Daemon
from revaer_core.engine.registry import ENGINES
from revaer_core.errors import RevaerError
from revaer_core.preflight import check_startup
from revaer_core.testing.simulated import Removal, SimulationScript


@click.command("run")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="libtorrent",
    show_default=True,
    help="The BitTorrent engine: libtorrent (real), or simulated (scripted, for tests and benchmarks).",
)
@click.option("--no-api", is_flag=True, help="Do not serve the HTTP API ([api] host and port say where it listens).")
@click.option("--sim-torrents", type=click.IntRange(min=0), default=0, help="Simulated engine: torrents it adds.")
@click.option("--sim-files", type=click.IntRange(min=1), default=3, help="Simulated engine: files per torrent.")
@click.option("--sim-steps", type=click.IntRange(min=1), default=20, help="Simulated engine: steps to complete.")
@click.option("--sim-seed", type=int, default=0, help="Simulated engine: the seed every choice comes from.")
@click.option(
    "--sim-remove",
    "sim_removals",
    multiple=True,
    metavar="N@STEP",
    callback=lambda _ctx, _param, values: tuple(_removal(v) for v in values),
    help="Simulated engine: remove torrent number N (0-based) at engine step STEP; repeatable.",
)
@click.option(
    "--event-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append every event and every committed store write to this file as JSON lines (for crash tests).",
)
@pass_cli
def run_command(
    ctx: CliContext,
    engine: str,
    no_api: bool,
    sim_torrents: int,
    sim_files: int,
    sim_steps: int,
    sim_seed: int,
    sim_removals: tuple[Removal, ...],
    event_log: Path | None,
) -> None:
    """Run the runtime: engine, orchestrator, FsOps, persistence and the HTTP API.

    Stops cleanly on Ctrl+C or SIGTERM: the API stops, every status is written,
    the engine saves its resume data, and FsOps finishes or records its jobs,
    all within runtime.shutdown_deadline_s. Exits 3, saying why, if anything was
    left unwritten, or if the daemon stopped on its own: a worker thread died,
    or another daemon took the store's writer lock.
    """
    if not ctx.debug:
        logging.getLogger().setLevel(logging.INFO)  # a daemon reports what it does
    settings = ctx.settings
    check_startup(settings, serve_api=not no_api)  # every settings error before the store opens
    script = SimulationScript(
        torrents=sim_torrents,
        files_per_torrent=sim_files,
        steps=sim_steps,
        seed=sim_seed,
        save_path=settings.engine.download_dir,
        removals=sim_removals,
    )
    daemon = Daemon(settings, engine=engine, script=script, serve_api=not no_api, event_log=event_log)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        daemon.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        daemon.start()
        store = daemon.store.backend if daemon.store is not None else None
        api = f", API on {daemon.api.url}" if daemon.api is not None else ""
        click.echo(f"revaer running: {store or 'no'} store, {engine} engine{api}. Ctrl+C stops it.", err=True)
        daemon.wait()
        click.echo("revaer: stopping" if daemon.failure is None else "revaer: stopping on a fault", err=True)
    finally:
        report = daemon.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not report.clean:
        raise RevaerError(report.summary())  # one line, exit 3


def _removal(text: str) -> Removal:
    """``N@STEP`` as a :class:`Removal`; a click error naming the option otherwise."""
    number, sep, step = text.partition("@")
    if not sep or not number.strip().isdigit() or not step.strip().isdigit() or int(step) < 1:
        raise click.BadParameter(f"expected N@STEP with N >= 0 and STEP >= 1, got {text!r}", param_hint="--sim-remove")
    return Removal(torrent=int(number), at_step=int(step))
