"""``revaer runtime``: which store is selected and how it is doing."""

from __future__ import annotations

import click

from revaer_core.cli.context import CliContext
from revaer_core.cli.output import emit_fields, emit_json
from revaer_core.errors import RevaerError
from revaer_core.plugins import load_plugin
from revaer_core.store import new_plugin_manager

pass_context = click.make_pass_decorator(CliContext)


class RuntimeGroup(click.Group):
    """``revaer runtime``: the built-in commands plus those of the selected backend (``runtime_commands``).

    The backend's commands are looked up from the settings, without opening the
    store, so ``migrate`` works on a schema the store would refuse to open; the
    hook gets the backend's options table and the data dir, all a command needs.
    """

    def _backend_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        cached: dict[str, click.Command] | None = ctx.meta.get("revaer.runtime_commands")
        if cached is not None:
            return cached
        found: dict[str, click.Command] = {}
        cli_ctx = ctx.find_object(CliContext)
        runtime = None if cli_ctx is None else cli_ctx.settings.runtime
        name = None if runtime is None else runtime.selected_backend
        if runtime is not None and name is not None:
            plugin, _ = load_plugin(name)
            pm = new_plugin_manager()
            pm.register(plugin, name=name)
            commands = pm.hook.runtime_commands(options=runtime.options_for(name), data_dir=runtime.data_dir)
            for command in commands or ():
                if command.name and command.name not in self.commands:
                    found[command.name] = command
        ctx.meta["revaer.runtime_commands"] = found
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            extra = self._backend_commands(ctx)
        except RevaerError:
            extra = {}  # bad settings or a broken plugin: --help still lists the built-in commands
        return sorted({*super().list_commands(ctx), *extra})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._backend_commands(ctx).get(cmd_name)


@click.group("runtime", cls=RuntimeGroup)
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
                (
                    "persistence",
                    "on" if store.persistent else f"off ({_why_off(runtime.backend, runtime.persistence)})",
                ),
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
