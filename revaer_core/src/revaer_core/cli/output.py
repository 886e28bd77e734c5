"""How the CLI prints: aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from revaer_core.redact import redact
from revaer_core.serialize import to_json


def emit_json(value: Any) -> None:
    click.echo(redact(json.dumps(to_json(value), indent=2, ensure_ascii=False)))


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
