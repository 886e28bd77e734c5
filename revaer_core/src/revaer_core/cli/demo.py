"""``revaer demo``: see the runtime keep its state across a restart."""

from __future__ import annotations

from pathlib import Path

import click

from revaer_core.demo import run_demo


@click.command("demo")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("revaer-demo"),
    show_default=True,
    help="Where the demo keeps its payload, downloads, library and store (replaced on every run).",
)
def demo_command(root: Path) -> None:
    """Download a torrent over loopback, move it into a library, restart, and show what survived.

    Needs revaer-core[libtorrent]; uses the embedded PostgreSQL store when
    revaer-runtime-pg[embedded] is installed, the memory store otherwise.
    """
    run_demo(root.resolve())
