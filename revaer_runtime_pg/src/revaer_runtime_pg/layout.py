"""How a value's attributes fill a table's columns, worked out from the SQLAlchemy ``Table`` alone.

The column order, how each column is checked and how it is made storable
all follow from the table's columns (their order, type and nullability), so
a column added to the table needs no position written anywhere else. A row
whose every value is storable as it is (the common case) is built by one
check per column; only a row that fails it goes through each column's
sanitiser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from revaer_runtime_pg import sanitize
from revaer_runtime_pg.sanitize import BIGINT_MAX, BIGINT_MIN

#: Makes one column's value storable, adding what it changed to ``problems``.
Sanitiser = Callable[[Any, list[str]], Any]
#: Turns an attribute into what its column is copied as (a files list into JSONB, say); may sanitise too.
Converter = Callable[[Any, list[str]], Any]


def pick(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A getter of the values at ``positions``, always as a tuple (``itemgetter`` of one gives the bare value)."""
    if not positions:
        return lambda row: ()
    if len(positions) == 1:
        (only,) = positions
        return lambda row: (row[only],)
    return itemgetter(*positions)


def _plain_texts(values: Sequence[str]) -> bool:
    joined = "".join(values)
    return joined.isascii() and "\x00" not in joined


def storability(column: sa.Column[Any], name: str, field: str) -> tuple[str, Sanitiser] | None:
    """For ``column``'s value in variable ``name``: an expression true when it is storable as it is, and the
    sanitiser that makes it storable otherwise (problems say ``field``). ``None``: any value is storable.

    By type: TEXT takes no NUL (nor lone surrogates: non-ASCII text is left to
    the sanitiser), BIGINT stops at 2^63-1, a time must read back in years 1 to 9999.
    """
    kind, nullable = column.type, column.nullable
    one: Callable[[Any, str, list[str]], Any]
    optional: Callable[[Any, str, list[str]], Any]
    if isinstance(kind, pg.ARRAY) and isinstance(kind.item_type, sa.Text):
        return f"_plain_texts({name})", lambda values, problems: [sanitize.text(v, field, problems) for v in values]
    if isinstance(kind, sa.Text) and not isinstance(kind, sa.Enum):
        test, one, optional = f"({name}.isascii() and '\\x00' not in {name})", sanitize.text, sanitize.optional_text
    elif isinstance(kind, sa.BigInteger):
        test, one, optional = f"BIGINT_MIN <= {name} <= BIGINT_MAX", sanitize.bigint, sanitize.optional_bigint
    elif isinstance(kind, sa.DateTime):
        test, one, optional = f"1 < {name}.year < 9999", sanitize.moment, sanitize.optional_moment
    else:
        return None
    if nullable:
        return f"({name} is None or {test})", lambda value, problems: optional(value, field, problems)
    return test, lambda value, problems: one(value, field, problems)


@attrs.frozen
class Layout:
    """One kind of value as rows of ``columns`` (in table order): how to write it, and where each column is read."""

    table: sa.Table
    columns: tuple[str, ...]
    position: Mapping[str, int]  #: each column's index in a row
    paths: tuple[str, ...]  #: the attribute (dotted path) of the value each column is filled from
    converted: frozenset[str]  #: the columns filled by a converter rather than straight from their attribute
    source: str  #: the Python source of :meth:`row`, generated from the table (as attrs generates ``__init__``)
    _row: Callable[[Any, list[str]], list[Any]]

    @classmethod
    def of(
        cls,
        table: sa.Table,
        columns: Sequence[str],
        attribute: Callable[[str], str],
        *,
        converted: Mapping[str, Converter] | None = None,
        field_prefix: str = "",
    ) -> Layout:
        """The layout of ``table``'s ``columns``, each filled from the value's ``attribute(column)`` (dotted path).

        An enum column takes the attribute's ``.value``; an array column a
        list of it; a column in ``converted`` what its converter makes of it
        (and is not checked again). Problems name the column, after
        ``field_prefix``.

        The row function is generated, like the ``__init__`` attrs writes: a
        status is written hundreds of thousands of times, and one generic loop
        over the columns (measured) cost about three times the straight-line
        code it generates, which is what was written by hand before.
        """
        converted = converted or {}
        found = [table.c[name] for name in columns]
        namespace: dict[str, Any] = {"BIGINT_MIN": BIGINT_MIN, "BIGINT_MAX": BIGINT_MAX, "_plain_texts": _plain_texts}
        lines = ["def row(value, problems):"]
        checks: list[str] = []
        plain: list[str] = []
        sanitised: list[str] = []
        paths: list[str] = []
        for i, column in enumerate(found):
            path = attribute(column.name)
            paths.append(path)
            if not all(part.isidentifier() for part in path.split(".")):
                raise ValueError(f"{table.name}.{column.name}: {path!r} is not an attribute path")
            read = f"value.{path}.value" if isinstance(column.type, sa.Enum) else f"value.{path}"
            name = f"v{i}"
            plain.append(name)
            if column.name in converted:
                namespace[f"convert_{i}"] = converted[column.name]
                lines.append(f"    {name} = convert_{i}({read}, problems)")
                sanitised.append(name)
                continue
            lines.append(f"    {name} = list({read})" if isinstance(column.type, pg.ARRAY) else f"    {name} = {read}")
            storable = storability(column, name, f"{field_prefix}{column.name}")
            if storable is None:
                sanitised.append(name)
                continue
            checks.append(storable[0])
            namespace[f"sanitise_{i}"] = storable[1]
            sanitised.append(f"sanitise_{i}({name}, problems)")
        if checks:
            lines.append(f"    if {' and '.join(checks)}:  # the common case: nothing to sanitise")
            lines.append(f"        return [{', '.join(plain)}]")
        lines.append(f"    return [{', '.join(sanitised)}]")
        source = "\n".join(lines) + "\n"
        exec(compile(source, f"<row layout of {table.name}>", "exec"), namespace)  # noqa: S102 - our own columns only
        return cls(
            table=table,
            columns=tuple(columns),
            position={name: i for i, name in enumerate(columns)},
            paths=tuple(paths),
            converted=frozenset(converted),
            source=source,
            row=namespace["row"],
        )

    def row(self, value: Any, problems: list[str]) -> list[Any]:
        """The row that stores ``value``; anything changed to make it storable is added to ``problems``."""
        return self._row(value, problems)
