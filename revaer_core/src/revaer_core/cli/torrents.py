"""``revaer torrents``: torrent state as the store holds it, readable while the daemon is down."""

from __future__ import annotations

import itertools

import click

from revaer_core.api import operations
from revaer_core.api.models import TorrentPage
from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.cli.output import (
    JSON_HELP,
    continue_hint,
    emit_fields,
    emit_json,
    emit_table,
    human_bytes,
    human_time,
    paging_options,
    percent,
)
from revaer_core.query import TorrentSort
from revaer_core.status import TorrentState, TorrentStatus


@click.group("torrents")
def torrents_group() -> None:
    """Torrents the runtime store holds: list them, show one."""


@torrents_group.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in TorrentState]),
    help="Only torrents in this state; repeat for several.",
)
@click.option("--name", metavar="TEXT", help="Only torrents whose name contains TEXT (case-insensitive).")
@click.option(
    "--sort",
    type=click.Choice([s.value for s in TorrentSort]),
    default=TorrentSort.ADDED.value,
    show_default=True,
    help="Order of the rows; ties are broken by id.",
)
@click.option("--desc", is_flag=True, help="Reverse the order (newest, or last by name, first).")
@paging_options
@pass_cli
def list_command(
    ctx: CliContext,
    states: tuple[str, ...],
    name: str | None,
    sort: str,
    desc: bool,
    limit: int,
    cursor: str | None,
    every_page: bool,
    as_json: bool,
) -> None:
    """List torrents with their state, progress and size, a page at a time.

    A page ends with a cursor (on stderr) to pass to --cursor for the next one.
    """
    query = operations.torrent_query(states=states, name=name, sort=sort, descending=desc, limit=limit, cursor=cursor)
    if every_page:
        page = TorrentPage(items=tuple(operations.walk_torrents(ctx.store, query)))
    else:
        page = operations.list_torrents(ctx.store, query)
    if as_json:
        emit_json(page)
        return
    emit_table(
        ["ID", "STATE", "PROGRESS", "SIZE", "ADDED", "NAME"],
        [
            (
                t.id,
                t.state.value,
                percent(t.progress.downloaded, t.progress.total),
                human_bytes(t.progress.total) if t.progress.total else None,
                human_time(t.added_at),
                t.name,
            )
            for t in page.items
        ],
    )
    continue_hint("revaer torrents list", page.next_cursor)


@torrents_group.command("show")
@click.argument("torrent_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_cli
def show_command(ctx: CliContext, torrent_id: str, as_json: bool) -> None:
    """Show everything the store holds about the torrent ID (a UUID), files included."""
    status = operations.get_torrent(ctx.store, operations.parse_torrent_id(torrent_id))
    if as_json:
        emit_json(status)
        return
    emit_fields(_fields(status))
    if status.files:
        click.echo()
        emit_table(
            ["#", "SIZE", "DONE", "PRIORITY", "SELECTED", "PATH"],
            [
                (
                    f.index,
                    human_bytes(f.size),
                    percent(f.bytes_completed, f.size),
                    f.priority,
                    "yes" if f.selected else "no",
                    f.path,
                )
                for f in status.files
            ],
        )


def _fields(t: TorrentStatus) -> list[tuple[str, object]]:
    files = "unknown (no metadata yet)" if t.files is None else str(len(t.files))
    eta = t.progress.eta_seconds
    return list(
        itertools.chain(
            [
                ("id", t.id),
                ("name", t.name),
                ("state", t.state.value),
            ],
            [("failure", t.failure)] if t.failure else [],
            [
                (
                    "progress",
                    f"{percent(t.progress.downloaded, t.progress.total)} "
                    f"({t.progress.downloaded} of {t.progress.total} bytes)",
                ),
                ("eta", None if eta is None else f"{eta} s"),
                ("download rate", f"{human_bytes(t.rates.download_bps)}/s"),
                ("upload rate", f"{human_bytes(t.rates.upload_bps)}/s"),
                ("ratio", f"{t.rates.ratio:.2f}"),
                ("files", files),
                ("sequential", "yes" if t.sequential else "no"),
                ("download dir", t.download_dir),
                ("library path", t.library_path),
                ("added", human_time(t.added_at)),
                ("completed", human_time(t.completed_at)),
                ("last updated", human_time(t.last_updated)),
            ],
        )
    )
