"""The ``revaer`` command.

Every command reports failure as one line on stderr and an exit code: 2 for
input the user can fix (a bad option, setting or id), 3 for a runtime or store
failure. ``--debug`` adds the traceback and changes nothing else: the exit
code is the same with it and without it.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click

from revaer_core.api.incidents import quiet_incidents
from revaer_core.cli.context import DAEMON_STOPPED, CliContext
from revaer_core.cli.lazy import LazyCommand, LazyGroup
from revaer_core.errors import RevaerError
from revaer_core.redact import RedactingFilter, redact


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler], force=True)
    quiet_incidents(debug)  # a command's one error line names the incident; --debug prints its log line too


#: Every command, imported only when it runs (``revaer run`` loads no importer, demo or API client), with its
#: help's first paragraph for ``revaer --help`` (a test checks each against the command's own).
COMMANDS = (
    LazyCommand("api", "revaer_core.cli.api:api_command",
                "Serve the HTTP API against the runtime store until interrupted."),
    LazyCommand("demo", "revaer_core.cli.demo:demo_command",
                "Download a torrent over loopback, copy it into a library, restart, and show what survived."),
    LazyCommand("fsops", "revaer_core.cli.fsops:fsops_group",
                "FsOps jobs (moving finished torrents into the library): list, show with history, retry."),
    LazyCommand("import", "revaer_core.cli.importer:import_group",
                "Bring torrents in from another client, with their progress and choices, without a recheck."),
    LazyCommand("plugins", "revaer_core.cli.plugins:plugins_command",
                "List installed runtime plugins: name, distribution, version and hooks."),
    LazyCommand("run", "revaer_core.cli.run:run_command",
                "Run the runtime: engine, orchestrator, FsOps, persistence and the HTTP API."),
    LazyCommand("runtime", "revaer_core.cli.runtime:runtime_group",
                "The runtime store: selection, health and (per backend) schema commands."),
    LazyCommand("torrents", "revaer_core.cli.control:torrents_group",
                "Torrents: add and control them through the daemon, list and show them from the store."),
)  # fmt: skip


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="REVAER_CONFIG",
    help="Settings file (TOML). Default: $REVAER_CONFIG, else ./revaer.toml when present.",
)
@click.option("--debug", is_flag=True, help="Log debug messages and show tracebacks on errors.")
@click.version_option(package_name="revaer-core", prog_name="revaer")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """Revaer: a torrent runtime whose state survives restarts.

    Persistence comes from a runtime-store plugin chosen by the runtime.backend
    setting or REVAER_RUNTIME_BACKEND; REVAER_RUNTIME_PERSISTENCE=off turns it off.
    """
    _setup_logging(debug)
    if isinstance(ctx.obj, CliContext):  # the caller passed one, with its own store (see CliContext)
        ctx.obj.debug = ctx.obj.debug or debug
    else:
        ctx.obj = CliContext(config_path=config_path, debug=debug)
    ctx.call_on_close(ctx.obj.close)


def _traceback(debug: bool) -> None:
    """With ``--debug``, the traceback of the error being handled (redacted): output changes, the exit code not."""
    if debug:
        click.echo(redact(traceback.format_exc()).rstrip(), err=True)


def main(
    argv: list[str] | None = None,
    *,
    obj: CliContext | None = None,
    group: click.Group | None = None,
    prog_name: str = "revaer",
) -> int:
    """Run the CLI; errors become one line and an exit code instead of a traceback.

    ``obj`` hands the commands an already-opened store (see :class:`CliContext`);
    ``group`` runs another command group the same way (the test harness's). As
    the process's own command line (no ``argv``), a command whose daemon has
    stopped exits at once.
    """
    code = _run(argv, obj, group, prog_name)
    if argv is None and DAEMON_STOPPED.is_set():
        _exit_at_once(code)
    return code


def _exit_at_once(code: int) -> NoReturn:
    """Exit without the interpreter's teardown: the daemon's stop closed all that matters.

    Freeing a daemon's heap object by object took seconds at 10,000 torrents,
    after the stop had met its deadline: time a supervisor counts against it.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(argv: list[str] | None, obj: CliContext | None, group: click.Group | None, prog_name: str) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = (group or cli).main(args=argv, prog_name=prog_name, standalone_mode=False, obj=obj)
    except click.exceptions.Abort:
        click.echo("revaer: aborted", err=True)
        return 130
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else prog_name
        click.echo(f"revaer: error: {exc.format_message()} (see '{command} --help')", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return 2
    except RevaerError as exc:
        _traceback(debug)
        click.echo(f"revaer: error: {redact(str(exc))}", err=True)
        return exc.exit_code
    except Exception as exc:
        _traceback(debug)
        hint = "" if debug else " (run with --debug for details)"
        click.echo(f"revaer: error: {redact(f'{type(exc).__name__}: {exc}')}{hint}", err=True)
        return 3
    return result if isinstance(result, int) else 0


__all__ = ["CliContext", "cli", "main"]
