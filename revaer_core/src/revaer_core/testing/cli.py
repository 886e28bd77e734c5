"""``python -m revaer_core.testing run``: the daemon on the simulated engine, a load generator for tests and benchmarks.

It is ``revaer run`` (same settings, same start, stop and exit codes) with
the engine swapped for a script and, on request, an event log for crash
tests to check the store against::

    python -m revaer_core.testing --config revaer.toml run --sim-torrents 1000 --sim-steps 50 \\
        --event-log events.jsonl

``--config`` and ``--debug`` are the ``revaer`` command's own options.
"""

from __future__ import annotations

from pathlib import Path

import click

from revaer_core.cli import cli, main
from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.cli.run import no_api_option, run_daemon
from revaer_core.testing.eventlog import EventLog
from revaer_core.testing.simulated import Removal, SimulatedEngineFactory, SimulationScript

PROG = "python -m revaer_core.testing"


def _removal(text: str) -> Removal:
    """``N@STEP`` as a :class:`Removal`; a click error naming the option otherwise."""
    number, sep, step = text.partition("@")
    if not sep or not number.strip().isdigit() or not step.strip().isdigit() or int(step) < 1:
        raise click.BadParameter(f"expected N@STEP with N >= 0 and STEP >= 1, got {text!r}", param_hint="--sim-remove")
    return Removal(torrent=int(number), at_step=int(step))


@click.command("run")
@no_api_option
@click.option(
    "--engine",
    type=click.Choice(["simulated", "libtorrent"]),
    default="simulated",
    show_default=True,
    help="The engine: the script (the --sim-* options), or libtorrent as revaer run has it (with the event log).",
)
@click.option("--sim-torrents", type=click.IntRange(min=0), default=0, help="Torrents the engine adds at start.")
@click.option("--sim-files", type=click.IntRange(min=1), default=3, help="Files per torrent.")
@click.option("--sim-steps", type=click.IntRange(min=1), default=20, help="Engine steps (50 ms each) to complete.")
@click.option("--sim-seed", type=int, default=0, help="The seed every choice of the engine comes from.")
@click.option(
    "--sim-remove",
    "sim_removals",
    multiple=True,
    metavar="N@STEP",
    callback=lambda _ctx, _param, values: tuple(_removal(v) for v in values),
    help="Remove torrent number N (0-based) at engine step STEP, as a user's remove would; repeatable.",
)
@click.option(
    "--event-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append every folded event and every committed store write to this file as JSON lines.",
)
@pass_cli
def run_command(
    ctx: CliContext,
    no_api: bool,
    engine: str,
    sim_torrents: int,
    sim_files: int,
    sim_steps: int,
    sim_seed: int,
    sim_removals: tuple[Removal, ...],
    event_log: Path | None,
) -> None:
    """Run the daemon on the simulated engine (scripted torrents, no network, no disk), or on libtorrent.

    Everything else is the product's daemon on the settings given: store,
    orchestrator, FsOps and the HTTP API, stopped by Ctrl+C or SIGTERM, exit 3
    when the stop was not clean.
    """
    script = SimulationScript(
        torrents=sim_torrents,
        files_per_torrent=sim_files,
        steps=sim_steps,
        seed=sim_seed,
        save_path=ctx.settings.engine.download_dir,
        removals=sim_removals,
    )
    log = EventLog(event_log) if event_log is not None else None
    try:
        chosen = SimulatedEngineFactory(script) if engine == "simulated" else engine
        run_daemon(ctx, chosen, serve_api=not no_api, observer=log)
    finally:
        if log is not None:
            log.close()


#: The harness's command group: ``revaer``'s global options, and the commands only tests and benchmarks need.
harness = click.Group(
    "revaer-testing",
    params=list(cli.params),
    callback=cli.callback,
    context_settings=cli.context_settings,
    help="Revaer's test harness: the daemon on the simulated engine, for tests and benchmarks.",
    commands=[run_command],
)


def harness_main(argv: list[str] | None = None) -> int:
    """Run the harness's commands with the product CLI's error handling (one line, exit 2 or 3)."""
    return main(argv, group=harness, prog_name=PROG)
