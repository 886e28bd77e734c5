"""``revaer import qbittorrent|transmission DIR``: another client's torrents, with their progress and choices.

Each torrent goes through the running daemon's durable add (its API) when a
daemon answers, else straight into the store, to be restored at the next
``revaer run``. A file that cannot be imported is one line on stderr naming it
and why; the others are still imported.

Exit codes: 0 every torrent imported (or already there), 1 some files were
skipped (the rest imported), 2 the folder is missing or not the client's, or
nothing would keep the import, 3 the store or the daemon failed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from revaer_core.cli.client import DaemonClient, DaemonUnreachable
from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.cli.output import emit_json, emit_table
from revaer_core.errors import ConfigError, InvalidInput
from revaer_core.importers.plan import ImportPlan, Outcome, Planned, Result
from revaer_core.redact import redact
from revaer_core.settings import EngineSettings

#: Exit code when some files of the folder were skipped and the rest imported.
SKIPPED_EXIT = 1

EXIT_HELP = (
    "Exit codes: 0 all imported or already there; 1 some files skipped, each named on stderr, the rest "
    "imported; 2 the folder is missing or not the client's; 3 the store or the daemon failed."
)


def _reader(client: str) -> Callable[[Path, EngineSettings], ImportPlan]:
    """The folder reader of ``client``, imported on use: reading needs libtorrent."""
    try:
        if client == "qbittorrent":
            from revaer_core.importers.qbittorrent import read_folder
        else:
            from revaer_core.importers.transmission import read_folder
    except ImportError:  # pragma: no cover - an install without the libtorrent extra
        raise InvalidInput("importing needs libtorrent: pip install 'revaer-core[libtorrent]'") from None
    return read_folder


def _body(planned: Planned) -> dict[str, Any]:
    """The JSON add the daemon's API takes for ``planned``, resume data included."""
    request = planned.request
    body: dict[str, Any] = {
        "metainfo": base64.b64encode(request.info.metainfo or b"").decode(),
        "resume_data": base64.b64encode(request.resume_data or b"").decode(),
        "paused": request.paused,
        "sequential": request.sequential,
        "save_path": str(request.save_path),
        "labels": list(request.labels),
        "file_priorities": {str(i): p for i, p in sorted(request.file_priorities.items())},
    }
    for key in ("download_limit", "upload_limit"):
        if getattr(request, key) is not None:
            body[key] = getattr(request, key)
    return body


def _through_daemon(client: DaemonClient, torrents: Sequence[Planned]) -> list[Result]:
    """Add each torrent through the daemon; :class:`DaemonUnreachable` at the first means none runs."""
    results = []
    for planned in torrents:
        try:
            answer = client.request("POST", "/v1/torrents", json_body=_body(planned))
        except InvalidInput as exc:
            results.append(Result(planned.file, Outcome.SKIPPED, planned, f"the daemon refused it: {exc}"))
            continue
        outcome = Outcome.IMPORTED if answer.status == 201 else Outcome.ALREADY_THERE
        results.append(Result(planned.file, outcome, planned))
    return results


def _dry(ctx: CliContext, torrents: Sequence[Planned]) -> list[Result]:
    store = ctx.store
    return [
        Result(p.file, Outcome.ALREADY_THERE if store.get_torrent(p.info.torrent_id) else Outcome.WOULD_IMPORT, p)
        for p in torrents
    ]


def _json_of(plan: ImportPlan, results: Sequence[Result], *, dry_run: bool, via: str | None) -> dict[str, Any]:
    rows = []
    for r in results:
        row: dict[str, Any] = {"file": str(r.file), "outcome": r.outcome.value, "reason": r.reason}
        if (p := r.planned) is not None:
            request = p.request
            row |= {
                "torrent_id": str(p.info.torrent_id),
                "info_hash": p.info.info_hash,
                "name": p.info.name,
                "save_path": str(request.save_path),
                "progress": round(p.progress, 6),  # verified pieces / all pieces
                "pieces_had": p.pieces_had,
                "pieces_total": p.pieces_total,
                "paused": request.paused,
                "sequential": request.sequential,
                "labels": list(request.labels),
                "file_priorities": {str(i): v for i, v in sorted(request.file_priorities.items())},
                "download_limit": request.download_limit,
                "upload_limit": request.upload_limit,
                "lost": list(p.lost),
            }
        rows.append(row)
    counts = {o.value: sum(r.outcome is o for r in results) for o in Outcome}
    return {
        "client": plan.client.value,
        "folder": str(plan.folder),
        "dry_run": dry_run,
        "via": via,
        "counts": counts,
        "torrents": rows,
    }


def _table(results: Sequence[Result]) -> None:
    rows = []
    for r in results:
        if r.planned is None:
            continue
        p = r.planned
        request = p.request
        rows.append(
            [
                r.outcome.value.replace("_", " "),
                p.info.name,
                f"{100 * p.progress:.1f}%",
                "yes" if request.paused else "no",
                sum(1 for v in request.file_priorities.values() if v == 0) or None,
                ",".join(request.labels) or None,
                str(request.save_path),
                "; ".join(p.lost) or None,
            ]
        )
    if rows:
        emit_table(["OUTCOME", "NAME", "VERIFIED", "PAUSED", "SKIPPED FILES", "LABELS", "SAVE PATH", "LOST"], rows)


def _run(ctx: CliContext, client: str, folder: Path, dry_run: bool, as_json: bool) -> None:
    plan = _reader(client)(folder.expanduser().absolute(), ctx.settings.engine)
    results: list[Result] = [Result(s.file, Outcome.SKIPPED, None, s.reason) for s in plan.skipped]
    via: str | None = None
    if dry_run:
        results += _dry(ctx, plan.torrents)
    elif plan.torrents:
        daemon = ctx.daemon
        try:
            results += _through_daemon(daemon, plan.torrents)
            via = f"the daemon at {daemon.url}"
        except DaemonUnreachable:
            store = ctx.store
            if not store.persistent:
                raise ConfigError(
                    "runtime.backend",
                    f"no daemon answers at {daemon.url} and no runtime store is selected, so nothing would keep "
                    "the import: start 'revaer run', or set runtime.backend",
                ) from None
            from revaer_core.importers.delivery import into_store

            results += into_store(store, plan.torrents)
            via = f"the {store.backend} store (restored at the next 'revaer run')"
    for r in results:
        if r.outcome is Outcome.SKIPPED:
            click.echo(redact(f"revaer: skipped {r.file}: {r.reason}"), err=True)
    if as_json:
        emit_json(_json_of(plan, results, dry_run=dry_run, via=via))
    else:
        _table(results)
        counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
        done = "would import" if dry_run else "imported"
        first = counts[Outcome.WOULD_IMPORT] if dry_run else counts[Outcome.IMPORTED]
        tail = "; dry run: nothing was changed" if dry_run else (f" into {via}" if via else "")
        click.echo(
            f"{done} {first}, already there {counts[Outcome.ALREADY_THERE]}, "
            f"skipped {counts[Outcome.SKIPPED]} from {plan.folder}{tail}"
        )
    if any(r.outcome is Outcome.SKIPPED for r in results):
        raise click.exceptions.Exit(SKIPPED_EXIT)


@click.group("import")
def import_group() -> None:
    """Bring torrents in from another client, with their progress and choices, without a recheck.

    Stop the other client first: it writes its state on a clean stop. Each
    torrent keeps its save path, progress, paused state, file priorities and
    skipped files, labels (qBittorrent's category and tags) and rate limits;
    what Revaer has no place for is listed as lost. The torrents go through
    the running daemon when one answers, else into the store, restored at the
    next 'revaer run'. A torrent Revaer has already is left as it is, so an
    import can be run again.
    """


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--dry-run", is_flag=True, help="Print what would be imported and what is lost; change nothing."
            ),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table."),
        ]
    ):
        command = option(command)
    return command


@import_group.command("qbittorrent", epilog=EXIT_HELP)
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@_common
@pass_cli
def qbittorrent_command(ctx: CliContext, folder: Path, dry_run: bool, as_json: bool) -> None:
    """Import qBittorrent's torrents from its BT_backup folder DIR.

    DIR holds <hash>.torrent and <hash>.fastresume per torrent, usually
    ~/.local/share/qBittorrent/BT_backup.
    """
    _run(ctx, "qbittorrent", folder, dry_run, as_json)


@import_group.command("transmission", epilog=EXIT_HELP)
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@_common
@pass_cli
def transmission_command(ctx: CliContext, folder: Path, dry_run: bool, as_json: bool) -> None:
    """Import Transmission's torrents from its config folder DIR.

    DIR holds torrents/ and resume/, usually ~/.config/transmission-daemon
    (or ~/.config/transmission for the desktop client).
    """
    _run(ctx, "transmission", folder, dry_run, as_json)
