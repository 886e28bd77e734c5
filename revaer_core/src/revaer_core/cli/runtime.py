"""``revaer runtime``: which store is selected and how it is doing."""

from __future__ import annotations

import click

from revaer_core.cli.context import CliContext
from revaer_core.cli.output import emit_fields, emit_json

pass_context = click.make_pass_decorator(CliContext)


@click.group("runtime")
def runtime_group() -> None:
    """The runtime store: selection, health and (per backend) schema commands."""


@runtime_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def status_command(ctx: CliContext, as_json: bool) -> None:
    """Show the selected backend, whether persistence is on, and the store's health.

    Exits 3 when the store is selected but unhealthy.
    """
    runtime = ctx.settings.runtime
    store = ctx.store
    health = store.health()
    report = {
        "backend": store.backend or "none",
        "persistence": store.persistent,
        "settings_file": str(ctx.settings.source) if ctx.settings.source else None,
        "health": health,
        "capabilities": sorted(store.capabilities()),
    }
    if as_json:
        emit_json(report)
    else:
        emit_fields(
            [
                ("backend", report["backend"]),
                ("persistence", "on" if store.persistent else f"off ({_why_off(runtime.backend, runtime.persistence)})"),
                ("settings file", report["settings_file"] or "none (defaults and environment)"),
                ("store", f"{'ok' if health.ok else 'FAILING'}: {health.detail}"),
                *sorted(health.facts.items()),
            ]
        )
    if not health.ok:
        raise click.exceptions.Exit(3)


def _why_off(backend: str, persistence: bool) -> str:
    if not persistence:
        return "REVAER_RUNTIME_PERSISTENCE / runtime.persistence is off"
    return "runtime.backend is 'none'" if backend == "none" else "unknown"
