"""``revaer torrents add|remove|pause|resume|recheck|reannounce|files|select|set``: acting on a running daemon.

These change what the daemon runs, so they go through its HTTP API (see
:mod:`revaer_core.cli.client`): the daemon owns the engine and the catalog,
checks every input, and answers once the store holds the change. The daemon
also resolves an ID prefix, so an ID is passed through as typed.

A command given several torrents tries each: a refusal is one line on stderr
naming the argument, the others still happen, and the command exits 2 at the
end. A failure that would refuse them all (no daemon, a refused token, the
store not confirming) stops at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import attrs
import click

from revaer_core.cli.client import Answer, DaemonClient, DaemonFailed, DaemonUnreachable
from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.cli.output import JSON_HELP, emit_json
from revaer_core.cli.torrents import emit_files, human_rate, stored_torrent, torrents_group
from revaer_core.control.requests import MAX_RATE
from revaer_core.errors import InvalidInput
from revaer_core.redact import redact
from revaer_core.serialize import from_json
from revaer_core.status import FileEntry, TorrentStatus

T = TypeVar("T")

BITTORRENT = "application/x-bittorrent"

JSON_ONE = "Print the JSON the HTTP API answers instead of a line."
JSON_MANY = "Print the JSON the HTTP API answers instead of lines: the torrent, or an array for several arguments."

# -- option types ---------------------------------------------------------------------------------------

if TYPE_CHECKING:  # ParamType is generic in recent click only; click>=8.1 (pyproject) may not subscript it
    _RateParam = click.ParamType[int]
    _PriorityParam = click.ParamType[tuple[int, int]]
else:
    _RateParam = _PriorityParam = click.ParamType


class RateType(_RateParam):
    """A rate in bytes/s: ``500K``, ``1.5M``, ``2G`` (powers of 1024, as the rates in tables are shown).

    ``0``, ``none`` and ``unlimited`` are 0, which lifts a limit.
    """

    name = "rate"
    _FORM = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?(?:/s)?")
    _UNITS: Mapping[str, int] = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in {"none", "unlimited"}:
            return 0
        if text.startswith("-"):
            self.fail(f"{value!r} is negative; a rate is 0 (no limit) or more", param, ctx)
        found = self._FORM.fullmatch(text)
        if found is None:
            self.fail(f"{value!r} is not a rate: give bytes per second such as 500K, 1.5M or 0", param, ctx)
        number, unit = Decimal(found.group(1)), found.group(2) or ""
        if not unit and number != number.to_integral_value():
            self.fail(f"{value!r} is not a whole number of bytes per second", param, ctx)
        rate = int(number * self._UNITS[unit])
        if number and not rate:
            self.fail(f"{value!r} is less than 1 byte per second; give 0 for no limit", param, ctx)
        if rate > MAX_RATE:
            self.fail(f"{value!r} is more than the most a limit can be ({MAX_RATE} bytes per second)", param, ctx)
        return rate


class PriorityType(_PriorityParam):
    """``N=P``: file index N gets priority P (the daemon checks the ranges against the torrent)."""

    name = "n=p"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        index, sep, priority = str(value).partition("=")
        if not sep or not index.strip().isdigit() or not priority.strip().isdigit():
            self.fail(f"{value!r} is not N=P with a file index N and a priority P, e.g. 2=7", param, ctx)
        return int(index), int(priority)


RATE = RateType()
PRIORITY = PriorityType()
PRIORITY_HELP = "1 (low) to 7 (top), 4 the default, 0 skips it"


def json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def file_options(
    *skip_names: str, skip_help: str, priority_help: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--skip-file N`` and ``--priority N=P``, which ``add`` and ``select`` share; each words the help its own way.

    :param priority_help: what follows "Give file N priority P: <the priorities>;" in ``--priority``'s help.
    """
    skip = click.option(*skip_names, "skip", multiple=True, type=click.IntRange(min=0), metavar="N", help=skip_help)
    priority = click.option(
        "--priority",
        "priorities",
        multiple=True,
        type=PRIORITY,
        help=f"Give file N priority P: {PRIORITY_HELP}; {priority_help}",
    )

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        return skip(priority(command))

    return apply


# -- what the daemon answers --------------------------------------------------------------------------


def _status(answer: Answer) -> TorrentStatus:
    """The torrent status an answer holds, for the human line (``--json`` prints the answer itself)."""
    try:
        return from_json(TorrentStatus, answer.body)
    except (ValueError, TypeError, KeyError) as exc:
        raise DaemonFailed(f"the daemon's answer is not a torrent status ({type(exc).__name__}: {exc})") from None


def _file_list(body: Any) -> tuple[str, tuple[FileEntry, ...] | None]:
    """The torrent id and files a ``GET .../files`` answer holds (``None``: no metadata yet)."""
    try:
        files = body["files"]
        return str(body["torrent_id"]), None if files is None else tuple(from_json(FileEntry, f) for f in files)
    except (ValueError, TypeError, KeyError) as exc:
        raise DaemonFailed(f"the daemon's answer is not a file list ({type(exc).__name__}: {exc})") from None


def _named(status: TorrentStatus) -> str:
    return f"{status.id} {status.name or '(no name until its metadata arrives)'}"


def _attempt(arg: str, act: Callable[[str], T], label: Callable[[str], str] = str) -> T | None:
    """``act(arg)``, or ``None`` after one error line naming the argument when the daemon refuses it.

    Only a refusal of this argument (an exit-2 error) is caught: anything else
    (no daemon, a refused token, the store not answering) would refuse every
    argument, so it ends the command.
    """
    try:
        return act(arg)
    except InvalidInput as exc:
        click.echo(redact(f"revaer: error: {label(arg)}: {exc}"), err=True)
        return None


def _for_each(
    args: Sequence[str],
    act: Callable[[str], Answer],
    line: Callable[[Answer], str],
    *,
    as_json: bool,
    label: Callable[[str], str] = str,
    failed: bool = False,
) -> None:
    """Run ``act`` for every argument: a line per success (or the JSON at the end), an error line per refusal.

    Exits 2 at the end when any was refused (or ``failed`` says an earlier step refused one).
    """
    answers: list[Any] = []
    for arg in args:
        answer = _attempt(arg, act, label)
        if answer is None:
            failed = True
            continue
        answers.append(answer.body)
        if not as_json:
            click.echo(redact(line(answer)))
    if as_json and (answers or len(args) > 1):
        emit_json(answers[0] if len(args) == 1 else answers)
    if failed:
        raise click.exceptions.Exit(2)


# -- add ------------------------------------------------------------------------------------------------


@attrs.frozen
class AddOptions:
    """The choices an add is made with, in the two spellings the API takes (see ``revaer_core.api.control``)."""

    paused: bool = False
    sequential: bool = False
    save_path: str | None = None
    labels: tuple[str, ...] = ()
    skip: tuple[int, ...] = ()
    priorities: tuple[tuple[int, int], ...] = ()
    download_limit: int | None = None
    upload_limit: int | None = None

    def _limits(self) -> dict[str, int]:
        pairs = (("download_limit", self.download_limit), ("upload_limit", self.upload_limit))
        return {key: value for key, value in pairs if value is not None}

    def json_body(self, magnet: str) -> dict[str, Any]:
        """The JSON body of a magnet's add."""
        body: dict[str, Any] = {"magnet": magnet, "paused": self.paused, "sequential": self.sequential}
        if self.save_path is not None:
            body["save_path"] = self.save_path
        if self.labels:
            body["labels"] = list(self.labels)
        if self.skip:
            body["skip_files"] = list(self.skip)
        if self.priorities:
            body["file_priorities"] = {str(index): priority for index, priority in self.priorities}
        return {**body, **self._limits()}

    def query(self) -> list[tuple[str, str]]:
        """The query string of a .torrent's add (the body is the file itself)."""
        pairs = [(key, "true") for key, on in (("paused", self.paused), ("sequential", self.sequential)) if on]
        if self.save_path is not None:
            pairs.append(("save_path", self.save_path))
        pairs += [("label", label) for label in self.labels]
        pairs += [("skip_file", str(index)) for index in self.skip]
        pairs += [("priority", f"{index}={priority}") for index, priority in self.priorities]
        pairs += [(key, str(value)) for key, value in self._limits().items()]
        return pairs


def is_magnet(source: str) -> bool:
    return source.strip().lower().startswith("magnet:")


def _read_torrent(source: str) -> bytes:
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise InvalidInput("no such file (give a .torrent file or a magnet link)") from None
    except IsADirectoryError:
        raise InvalidInput("is a directory, not a .torrent file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read it: {(exc.strerror or str(exc)).lower()}") from None


def _add(client: DaemonClient, source: str, options: AddOptions) -> Answer:
    if is_magnet(source):
        return client.request("POST", "/v1/torrents", json_body=options.json_body(source.strip()))
    data = _read_torrent(source)
    return client.request("POST", "/v1/torrents", query=options.query(), body=data, content_type=BITTORRENT)


def _added_line(answer: Answer) -> str:
    status = _status(answer)
    if answer.status == 201:
        return f"added {_named(status)}{' (paused)' if status.paused else ''}"
    return f"already there {_named(status)} ({status.state.value}; left as it was)"


def _source_label(source: str) -> str:
    text = source.strip()
    return text if not is_magnet(text) or len(text) <= 60 else text[:57] + "..."


def _absolute(path: Path | None) -> str | None:
    """``path`` made absolute against the current directory: the daemon may run elsewhere."""
    return None if path is None else os.path.abspath(os.path.expanduser(path))


@click.command("add")
@click.argument("sources", metavar="FILE_OR_MAGNET...", nargs=-1, required=True)
@click.option("--paused", is_flag=True, help="Add it paused; it stays paused, across restarts too, until resumed.")
@click.option("--sequential", is_flag=True, help="Download the pieces in order (to play while it downloads).")
@click.option(
    "--save-path",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Folder to download into, inside [engine] allowed_save_roots; a relative DIR is taken from the "
    "current directory. Default: [engine] download_dir.",
)
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="Tag it with LABEL; repeat for several.")
@file_options(
    "--skip-file",
    skip_help="Do not download file N (0-based, as 'revaer torrents files' numbers them); repeat for several.",
    priority_help="repeat for several.",
)
@click.option("--download-limit", type=RATE, help="Download at most RATE (see above).")
@click.option("--upload-limit", type=RATE, help="Upload at most RATE (see above).")
@json_option(JSON_MANY)
@pass_cli
def add_command(
    ctx: CliContext,
    sources: tuple[str, ...],
    paused: bool,
    sequential: bool,
    save_path: Path | None,
    labels: tuple[str, ...],
    skip: tuple[int, ...],
    priorities: tuple[tuple[int, int], ...],
    download_limit: int | None,
    upload_limit: int | None,
    as_json: bool,
) -> None:
    """Add torrents from .torrent files or magnet links to the running daemon.

    The options apply to every torrent given. The daemon answers once the
    torrent and these choices are in the store. A torrent that is there
    already is left as it was ("already there").

    RATE is bytes per second, with an optional K, M or G (powers of 1024; KB
    and KiB mean K too): 500K, 1.5M, 2G. 0, none or unlimited means no limit.

    \b
    Example:
      revaer torrents add ubuntu.torrent --paused --skip-file 2 --label iso
      revaer torrents add 'magnet:?xt=urn:btih:...' --save-path ~/Downloads/tv
    """
    options = AddOptions(
        paused=paused,
        sequential=sequential,
        save_path=_absolute(save_path),
        labels=labels,
        skip=skip,
        priorities=priorities,
        download_limit=download_limit,
        upload_limit=upload_limit,
    )
    client = ctx.daemon
    _for_each(sources, lambda s: _add(client, s, options), _added_line, as_json=as_json, label=_source_label)


# -- remove and the actions -------------------------------------------------------------------------------


@click.command("remove")
@click.argument("refs", metavar="ID...", nargs=-1, required=True)
@click.option("--with-data", is_flag=True, help="Delete the torrent's files on disk too.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@json_option(JSON_MANY)
@pass_cli
def remove_command(ctx: CliContext, refs: tuple[str, ...], with_data: bool, assume_yes: bool, as_json: bool) -> None:
    """Remove torrents from the daemon and the store, after asking (on stderr) unless --yes.

    --json prints each torrent's last status. Exits 1 when the question is answered no.
    """
    client = ctx.daemon
    targets = list(refs)
    unknown = False
    if not assume_yes:
        found: dict[UUID, TorrentStatus] = {}
        for ref in refs:
            answer = _attempt(ref, lambda r: client.request("GET", client.torrent_path(r)))
            if answer is None:
                unknown = True
            else:
                status = _status(answer)
                found[status.id] = status
        if not found:
            raise click.exceptions.Exit(2)
        for status in found.values():
            click.echo(redact(f"  {_named(status)}"), err=True)
        what = "and delete their downloaded files" if with_data else "(their downloaded files stay)"
        if not click.confirm(f"Remove {len(found)} torrent(s) {what}?", default=False, err=True):
            click.echo("revaer: nothing removed", err=True)
            raise click.exceptions.Exit(1)
        targets = [str(torrent_id) for torrent_id in found]
    query = [("with_data", "true" if with_data else "false")]
    _for_each(
        targets,
        lambda ref: client.request("DELETE", client.torrent_path(ref), query=query),
        lambda answer: f"removed {_named(_status(answer))}{' and its files' if with_data else ''}",
        as_json=as_json,
        failed=unknown,
    )


def _action_command(action: str, done: str, summary: str) -> click.Command:
    """``revaer torrents <action> ID...``: POST /v1/torrents/ID/<action> for each ID (the same shape for each)."""

    @click.command(action, help=summary)
    @click.argument("refs", metavar="ID...", nargs=-1, required=True)
    @json_option(JSON_MANY)
    @pass_cli
    def command(ctx: CliContext, refs: tuple[str, ...], as_json: bool) -> None:
        client = ctx.daemon
        _for_each(
            refs,
            lambda ref: client.request("POST", client.torrent_path(ref, action)),
            lambda answer: f"{done} {_named(_status(answer))}",
            as_json=as_json,
        )

    return command


pause_command = _action_command(
    "pause", "paused", "Pause torrents; they stay paused, across restarts too, until resumed."
)
resume_command = _action_command("resume", "resumed", "Resume paused or failed torrents.")
recheck_command = _action_command(
    "recheck", "rechecking", "Check the torrents' files on disk again (they verify in the background)."
)
reannounce_command = _action_command(
    "reannounce", "reannounced", "Announce the torrents to their trackers now, for fresh peers."
)


# -- files ----------------------------------------------------------------------------------------------------


@click.command("files")
@click.argument("ref", metavar="ID")
@json_option(JSON_HELP)
@pass_cli
def files_command(ctx: CliContext, ref: str, as_json: bool) -> None:
    """List the files of torrent ID: index, size, progress, priority (0 is skipped) and path.

    Asks the running daemon; when none answers, shows what the store last saw.
    The index is what --skip-file, --skip and --priority take.
    """
    client = ctx.daemon
    try:
        body = client.request("GET", client.torrent_path(ref, "files")).body
        torrent_id, files = _file_list(body)
    except DaemonUnreachable:
        status = stored_torrent(ctx.store, ref)
        click.echo(f"revaer: no daemon answers at {client.url}; these are the files the store last saw", err=True)
        torrent_id, files = str(status.id), status.files
        body = {"torrent_id": torrent_id, "files": files}  # the shape the API answers
    if as_json:
        emit_json(body)
    elif files is None:
        click.echo(f"torrent {torrent_id} has no file list yet: its metadata has not arrived")
    else:
        emit_files(files)


# -- select and set -----------------------------------------------------------------------------------------


@click.command("select")
@click.argument("ref", metavar="ID")
@file_options(
    "--skip",
    "--skip-file",
    skip_help="Stop downloading file N (priority 0); repeat for several.",
    priority_help="N=4 downloads a skipped file again. Repeatable.",
)
@json_option(JSON_ONE)
@pass_cli
def select_command(
    ctx: CliContext, ref: str, skip: tuple[int, ...], priorities: tuple[tuple[int, int], ...], as_json: bool
) -> None:
    """Choose which files of torrent ID download, by index ('revaer torrents files ID' lists them).

    Files not named keep their priority.

    \b
    Example:
      revaer torrents select 3f2a --skip 0 --skip 3 --priority 1=7
    """
    if not skip and not priorities:
        raise click.UsageError("name files with --skip N or --priority N=P")
    client = ctx.daemon
    body = {"skip": list(skip), "priorities": {str(index): priority for index, priority in priorities}}

    answer = client.request("PATCH", client.torrent_path(ref, "files"), json_body=body)
    if as_json:
        emit_json(answer.body)
        return
    status = _status(answer)
    files = status.files or ()
    click.echo(redact(f"changed files of {_named(status)}: {sum(f.selected for f in files)} of {len(files)} selected"))


@click.command("set")
@click.argument("ref", metavar="ID")
@click.option(
    "--sequential/--no-sequential", default=None, help="Download the pieces in order, or back in the usual order."
)
@click.option("--download-limit", type=RATE, help="Download at most RATE (see above); 0 or none lifts the limit.")
@click.option("--upload-limit", type=RATE, help="Upload at most RATE (see above); 0 or none lifts the limit.")
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="Replace the labels with these; repeatable.")
@click.option("--no-labels", is_flag=True, help="Remove every label.")
@json_option(JSON_ONE)
@pass_cli
def set_command(
    ctx: CliContext,
    ref: str,
    sequential: bool | None,
    download_limit: int | None,
    upload_limit: int | None,
    labels: tuple[str, ...],
    no_labels: bool,
    as_json: bool,
) -> None:
    """Change options of torrent ID; what is not given stays as it is.

    RATE is bytes per second, with an optional K, M or G (powers of 1024; KB
    and KiB mean K too): 500K, 1.5M, 2G. 0, none or unlimited means no limit.

    \b
    Example:
      revaer torrents set 3f2a --download-limit 2M --upload-limit none --label tv --label hd
    """
    if labels and no_labels:
        raise click.UsageError("give --label or --no-labels, not both")
    body: dict[str, Any] = {}
    if sequential is not None:
        body["sequential"] = sequential
    if download_limit is not None:
        body["download_limit"] = download_limit
    if upload_limit is not None:
        body["upload_limit"] = upload_limit
    if labels or no_labels:
        body["labels"] = list(labels)
    if not body:
        raise click.UsageError(
            "nothing to change: give --sequential/--no-sequential, --download-limit, --upload-limit, "
            "--label or --no-labels"
        )
    client = ctx.daemon
    answer = client.request("PATCH", client.torrent_path(ref), json_body=body)
    if as_json:
        emit_json(answer.body)
        return
    status = _status(answer)
    changes = []
    if "sequential" in body:
        changes.append(f"sequential {'on' if status.sequential else 'off'}")
    if "download_limit" in body:
        changes.append(f"download limit {human_rate(status.download_limit)}")
    if "upload_limit" in body:
        changes.append(f"upload limit {human_rate(status.upload_limit)}")
    if "labels" in body:
        changes.append(f"labels {', '.join(status.labels) or 'none'}")
    click.echo(redact(f"changed {_named(status)}: {', '.join(changes)}"))


#: The commands this module adds to ``revaer torrents``.
COMMANDS: tuple[click.Command, ...] = (
    add_command,
    remove_command,
    pause_command,
    resume_command,
    recheck_command,
    reannounce_command,
    files_command,
    select_command,
    set_command,
)
for _command in COMMANDS:  # ``revaer torrents`` as the CLI loads it: the store's reads and these
    torrents_group.add_command(_command)

__all__ = ["COMMANDS", "torrents_group"]
