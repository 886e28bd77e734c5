"""How the CLI prints: aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import click

from revaer_core.api.models import public_json
from revaer_core.query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from revaer_core.redact import redact

JSON_HELP = "Print JSON, in the shape the HTTP API returns, instead of a table."

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def paging_options(command: F) -> F:
    """``--limit``, ``--cursor``, ``--all`` and ``--json``: what every listing command takes."""
    for option in reversed(
        [
            click.option(
                "--limit",
                type=click.IntRange(1, MAX_PAGE_SIZE),
                default=DEFAULT_PAGE_SIZE,
                show_default=True,
                help="Rows per page.",
            ),
            click.option("--cursor", metavar="CURSOR", help="Start after the page that printed this cursor."),
            click.option("--all", "every_page", is_flag=True, help="Follow the cursors and print every page."),
            click.option("--json", "as_json", is_flag=True, help=JSON_HELP),
        ]
    ):
        command = option(command)
    return command


def emit_json(value: Any) -> None:
    """``value`` in the JSON shape the HTTP API uses (:func:`public_json`), indented for people."""
    click.echo(json.dumps(public_json(value), indent=2, ensure_ascii=False))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns padded to their widest cell; ``-`` for a missing value."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo(redact("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()))


def emit_fields(pairs: Sequence[tuple[str, object]]) -> None:
    """``key  value`` lines with the keys aligned."""
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        click.echo(redact(f"{key.ljust(width)}  {'-' if value is None else value}"))


def human_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``: sizes as people read them."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_time(value: datetime | None) -> str | None:
    """A timestamp in UTC to the second, ``2026-03-14 15:09:26Z``; ``None`` stays missing."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def percent(done: int, total: int) -> str:
    """Progress as ``42.0%``; a torrent of unknown size shows ``-``."""
    return f"{100 * done / total:.1f}%" if total else "-"


class Listing(Protocol[T_co]):
    """A page as the API returns it: what :func:`emit_page` prints."""

    @property
    def items(self) -> Sequence[T_co]: ...

    @property
    def next_cursor(self) -> str | None: ...


def emit_page(
    page: Listing[T],
    *,
    as_json: bool,
    command: str,
    headers: Sequence[str],
    row: Callable[[T], Sequence[object]],
) -> None:
    """A listing command's output: the page as JSON, or a table of ``row(item)`` and the next page's command."""
    if as_json:
        emit_json(page)
        return
    emit_table(headers, [row(item) for item in page.items])
    continue_hint(command, page.next_cursor)


def continue_hint(command: str, next_cursor: str | None) -> None:
    """Tell a person how to fetch the next page (on stderr: stdout stays one table)."""
    if next_cursor is not None:
        click.echo(f"more: {command} --cursor {next_cursor}   (or --all for every page)", err=True)
