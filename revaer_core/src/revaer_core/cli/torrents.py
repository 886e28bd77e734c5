"""``revaer torrents``: torrent state as the store holds it, readable while the daemon is down.

The commands that change torrents (add, remove, pause, ...) live in
:mod:`revaer_core.cli.control`; they go through the running daemon's API.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from uuid import UUID

import click

from revaer_core.api import operations
from revaer_core.api.models import TorrentPage
from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.cli.output import (
    JSON_HELP,
    emit_fields,
    emit_json,
    emit_page,
    emit_table,
    human_bytes,
    human_time,
    paging_options,
    percent,
)
from revaer_core.control.refs import resolve
from revaer_core.query import MAX_PAGE_SIZE, TorrentSort
from revaer_core.status import FileEntry, TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore


@click.group("torrents")
def torrents_group() -> None:
    """Torrents: add and control them through the daemon, list and show them from the store.

    add, remove, pause, resume, recheck, reannounce, select and set need a
    running daemon ('revaer run'); list, show and files read the store, so
    they work while it is down. An ID is a torrent's UUID or a unique prefix
    of it or of its info-hash (at least 4 hex digits).

    \b
    Example:
      revaer torrents add ubuntu.torrent --paused --label iso --skip-file 2
      revaer torrents list --state stopped
      revaer torrents resume 3f2a
    """


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
    emit_page(
        page,
        as_json=as_json,
        command="revaer torrents list",
        headers=["ID", "STATE", "PROGRESS", "SIZE", "ADDED", "NAME"],
        row=lambda t: (
            t.id,
            t.state.value,
            percent(t.progress.downloaded, t.progress.total),
            human_bytes(t.progress.total) if t.progress.total else None,
            human_time(t.added_at),
            t.name,
        ),
    )


@torrents_group.command("show")
@click.argument("torrent_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_cli
def show_command(ctx: CliContext, torrent_id: str, as_json: bool) -> None:
    """Show everything the store holds about the torrent ID, files included (works while the daemon is down)."""
    status = stored_torrent(ctx.store, torrent_id)
    if as_json:
        emit_json(status)
        return
    emit_fields(_fields(status))
    if status.files:
        click.echo()
        emit_files(status.files)


def stored_torrent(store: RuntimeStore, ref: str) -> TorrentStatus:
    """The torrent ``ref`` names in the store: a UUID is read directly, a prefix is matched against every torrent.

    Prefixes match as the daemon matches them (:func:`revaer_core.control.refs.resolve`), so an
    ID that works with ``pause`` works with ``show``.
    """
    try:
        exact = UUID(ref.strip())
    except ValueError:
        exact = None
    if exact is not None:
        return operations.get_torrent(store, exact)
    every = operations.walk_torrents(store, operations.torrent_query(limit=MAX_PAGE_SIZE))
    return resolve(ref, every)


def emit_files(files: Sequence[FileEntry]) -> None:
    """A torrent's files as a table: index, size, progress, priority (0 is skipped), selected, path."""
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
            for f in files
        ],
    )


def human_rate(limit: int | None) -> str:
    """A rate limit as people read it: ``1.0 MiB/s``, or ``none``."""
    return "none" if not limit else f"{human_bytes(limit)}/s"


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
                ("info hash", t.info_hash),
                ("paused", "yes" if t.paused else "no"),
                ("sequential", "yes" if t.sequential else "no"),
                ("labels", ", ".join(t.labels) or None),
                ("download limit", human_rate(t.download_limit)),
                ("upload limit", human_rate(t.upload_limit)),
                ("download dir", t.download_dir),
                ("library path", t.library_path),
                ("added", human_time(t.added_at)),
                ("completed", human_time(t.completed_at)),
                ("last updated", human_time(t.last_updated)),
            ],
        )
    )
