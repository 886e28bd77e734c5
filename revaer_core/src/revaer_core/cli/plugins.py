"""``revaer plugins``: the runtime-store plugins installed, loaded or not."""

from __future__ import annotations

import click

from revaer_core.cli.output import emit_json, emit_table
from revaer_core.plugins import GROUP, installed_plugins


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List installed runtime plugins: name, distribution, version and hooks.

    A plugin that fails to import is listed with its error instead of its hooks.
    """
    found = installed_plugins()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo(f"no runtime plugins installed (none provide the {GROUP!r} entry point)")
        return
    emit_table(
        ["NAME", "DISTRIBUTION", "VERSION", "HOOKS"],
        [(p.name, p.distribution, p.version, f"error: {p.error}" if p.error else ", ".join(p.hooks)) for p in found],
    )
