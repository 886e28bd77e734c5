"""``revaer demo``: see the runtime keep its state across a restart."""

from __future__ import annotations

from pathlib import Path

import click

from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.demo import run_demo


@click.command("demo")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("revaer-demo"),
    metavar="DIR",
    show_default=True,
    help="Where the demo keeps its payload, downloads, library, settings file and store (replaced on every run).",
)
@pass_cli
def demo_command(ctx: CliContext, root: Path) -> None:
    """Download a torrent over loopback, copy it into a library, restart, and show what survived.

    Needs revaer-core[libtorrent]. Runs on the store that runtime.backend or
    REVAER_RUNTIME_BACKEND selects, and writes that choice into DIR/revaer.toml
    so that the commands it prints at the end open the same store.

    With no store selected, it runs PostgreSQL on an embedded server of its own,
    which needs revaer-runtime-pg[embedded] (or revaer-runtime-pg and a local
    PostgreSQL). If that server cannot start, the demo stops and says why;
    REVAER_RUNTIME_BACKEND=memory then runs it on the memory store
    (revaer-runtime-memory), which keeps nothing once the demo ends.

    It never writes to your database: REVAER_DATABASE_URL, runtime.postgres.dsn
    and REVAER_DATA_DIR are ignored.
    """
    run_demo(root.resolve(), ctx.settings.runtime)
