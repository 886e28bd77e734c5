"""The ``revaer`` command.

Every command reports failure as one line on stderr and an exit code: 2 for
input the user can fix (a bad option, setting or id), 3 for a runtime or store
failure. ``--debug`` adds the traceback and changes nothing else: the exit
code is the same with it and without it.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click

from revaer_core.api.incidents import quiet_incidents
from revaer_core.cli import control
from revaer_core.cli.api import api_command
from revaer_core.cli.context import CliContext
from revaer_core.cli.demo import demo_command
from revaer_core.cli.fsops import fsops_group
from revaer_core.cli.importer import import_group
from revaer_core.cli.plugins import plugins_command
from revaer_core.cli.run import run_command
from revaer_core.cli.runtime import runtime_group
from revaer_core.cli.torrents import torrents_group
from revaer_core.errors import RevaerError
from revaer_core.redact import RedactingFilter, redact


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler], force=True)
    quiet_incidents(debug)  # a command's one error line names the incident; --debug prints its log line too


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for _command in control.COMMANDS:  # the control commands act on the daemon through its API
    torrents_group.add_command(_command)
cli.add_command(runtime_group)
cli.add_command(plugins_command)
cli.add_command(torrents_group)
cli.add_command(fsops_group)
cli.add_command(api_command)
cli.add_command(run_command)
cli.add_command(demo_command)
cli.add_command(import_group)


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
    ``group`` runs another command group the same way (the test harness's).
    """
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
