"""A command group that imports a command's module only when that command is looked up to run.

``revaer run`` then loads the daemon and nothing of the importers, the demo or
the API client, which cost a restart about as much as the daemon's own modules.
``--help`` lists every command from the short help kept here, without importing any.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import attrs
import click


@attrs.frozen
class LazyCommand:
    """A command by name: where it lives (``module:attribute``) and its help's first paragraph."""

    name: str
    target: str
    short_help: str

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is a {type(command).__name__}, not a click command")
        return command


class LazyGroup(click.Group):
    """A :class:`click.Group` whose commands are :class:`LazyCommand`\\ s, loaded on first lookup."""

    def __init__(self, *args: Any, lazy_commands: Sequence[LazyCommand] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = {c.name: c for c in lazy_commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self.lazy_commands[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the short help of commands not loaded taken from here."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is None:
                short = click.Command(name, help=self.lazy_commands[name].short_help).get_short_help_str(limit)
                rows.append((name, short))
            elif not loaded.hidden:
                rows.append((name, loaded.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
