"""``revaer run``: the daemon, until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from revaer_core.arenas import limit_arenas
from revaer_core.cli.context import DAEMON_STOPPED, CliContext, pass_cli
from revaer_core.daemon import Daemon, DaemonObserver
from revaer_core.engine.registry import EngineFactory
from revaer_core.errors import RevaerError
from revaer_core.preflight import check_startup

#: ``--no-api``, shared with the test harness's daemon command.
no_api_option = click.option(
    "--no-api", is_flag=True, help="Do not serve the HTTP API ([api] host and port say where it listens)."
)


@click.command("run")
@no_api_option
@pass_cli
def run_command(ctx: CliContext, no_api: bool) -> None:
    """Run the runtime: engine, orchestrator, FsOps, persistence and the HTTP API.

    Stops cleanly on Ctrl+C or SIGTERM: the API stops, every status is written,
    the engine saves its resume data, and FsOps finishes or records its jobs,
    all within runtime.shutdown_deadline_s. Exits 3, saying why, if anything was
    left unwritten, or if the daemon stopped on its own: a worker thread died,
    or another daemon took the store's writer lock.
    """
    run_daemon(ctx, "libtorrent", serve_api=not no_api)


def run_daemon(
    ctx: CliContext, engine: str | EngineFactory, *, serve_api: bool, observer: DaemonObserver | None = None
) -> None:
    """Start a daemon on ``engine``, run it until a signal or a fault, stop it, and exit 3 if the stop was not clean.

    The product's ``revaer run`` and the test harness's daemon command both run through here.
    """
    if not ctx.debug:
        logging.getLogger().setLevel(logging.INFO)  # a daemon reports what it does
    settings = ctx.settings
    check_startup(settings, serve_api=serve_api)  # every settings error before the store opens
    limit_arenas()  # before the daemon's threads allocate: they share what each frees
    daemon = Daemon(settings, engine=engine, serve_api=serve_api, observer=observer)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        daemon.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        daemon.start()
        store = daemon.store.backend if daemon.store is not None else None
        api = f", API on {daemon.api.url}" if daemon.api is not None else ""
        name = engine if isinstance(engine, str) else engine.name
        click.echo(f"revaer running: {store or 'no'} store, {name} engine{api}. Ctrl+C stops it.", err=True)
        daemon.wait()
        click.echo("revaer: stopping" if daemon.failure is None else "revaer: stopping on a fault", err=True)
    finally:
        report = daemon.stop()
        DAEMON_STOPPED.set()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not report.clean:
        raise RevaerError(report.summary())  # one line, exit 3
