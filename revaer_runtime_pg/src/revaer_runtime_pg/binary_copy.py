"""PostgreSQL's binary COPY format for progress rows: one ``struct`` call a row, no psycopg call a value.

Progress is the store's hottest write (every downloading torrent, every
flush) and all of its columns are fixed-width, so a row packs in one C call
into bytes, which the garbage collector does not track. psycopg's
``write_row`` dumped each value through its adapters and, with the batch of
row tuples it was fed, caused most of the collections that made the writer
thread cost about as much as the event path itself.

The packing code is generated from the row's :class:`~revaer_runtime_pg.layout.Layout`
(the table's columns, their COPY types and nullability), as the layout's row
function is: a column added to the progress columns changes the record with
it, and a column that is not fixed-width stops the import instead of
writing a record the server misreads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from revaer_runtime_pg import rows
from revaer_runtime_pg.layout import Layout, storability
from revaer_runtime_pg.schema import copy_type

#: What a binary COPY stream starts with: the signature, then no flags and no header extension.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: What ends it: a field count of -1.
TRAILER = struct.pack(">h", -1)

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  #: timestamptz counts microseconds from here
_MICROSECOND = timedelta(microseconds=1)

#: Each fixed-width COPY type: its ``struct`` code, its length on the wire, and how a value ``{}`` becomes it.
_FIXED: dict[str, tuple[str, int, str]] = {
    "uuid": ("16s", 16, "{}.int.to_bytes(16)"),  # what UUID.bytes does, without its Python call
    "int8": ("q", 8, "{}"),
    "int4": ("i", 4, "{}"),
    "int2": ("h", 2, "{}"),
    "float8": ("d", 8, "{}"),
    "bool": ("?", 1, "{}"),
    "timestamptz": ("q", 8, "({} - _PG_EPOCH) // _MICROSECOND"),  # microseconds since 2000-01-01 UTC
}
#: The integer types, whose range ``struct`` checks itself (``pack`` raises past it).
_RANGE_CHECKED = frozenset({"int8", "int4", "int2"})


@attrs.frozen
class Record:
    """A layout's rows as binary COPY records: each one ``bytes``, packed in one ``struct`` call."""

    #: The record that stores a value, sanitised as the layout's row is (what was changed goes to the list).
    #: A value is packed as it is when every check ``struct`` does not make itself passes (a time's year),
    #: and only when ``pack`` raises (an integer past its type) is the row built and sanitised: the common
    #: case checks nothing twice. The generated function itself, called once per torrent and flush.
    record: Callable[[Any, list[str]], bytes]
    source: str  #: the Python source of ``record`` (and the ``pack`` it calls), generated from the layout

    @classmethod
    def of(cls, layout: Layout) -> Record:
        """The record of ``layout``'s columns, filled as its row is, sanitised by its row function when needed.

        Each field is its length (int32) and its bytes; a NULL is the length
        -1 alone, so each combination of NULLs in the nullable columns has a
        ``struct`` of its own.
        """
        found = [layout.table.c[name] for name in layout.columns]
        kinds = [copy_type(column) for column in found]
        for column, kind in zip(found, kinds, strict=True):
            if kind not in _FIXED:
                raise TypeError(f"{layout.table.name}.{column.name} ({kind}) is not a fixed-width COPY field")
            if column.name in layout.converted:
                raise TypeError(f"{layout.table.name}.{column.name} is converted; a record packs values as they are")
        names = [f"v{i}" for i in range(len(found))]
        namespace: dict[str, Any] = {"struct": struct, "_PG_EPOCH": _PG_EPOCH, "_MICROSECOND": _MICROSECOND}
        structs: dict[frozenset[int], str] = {}  #: each combination of NULLs: the name of its struct

        def packing(nulls: frozenset[int], indent: str) -> str:
            formats, values = [">h"], [str(len(found))]
            for i, kind in enumerate(kinds):
                code, length, value = _FIXED[kind]
                if i in nulls:
                    formats.append("i")
                    values.append("-1")
                else:
                    formats.append(f"i{code}")
                    values += [str(length), value.format(names[i])]
            key = structs.get(nulls)
            if key is None:
                key = structs[nulls] = f"_ROW_{len(structs)}"
                namespace[key] = struct.Struct(" ".join(formats))
            return f"{indent}return {key}.pack({', '.join(values)})"

        def branches(nullable: Sequence[int], nulls: frozenset[int], indent: str) -> list[str]:
            if not nullable:
                return [packing(nulls, indent)]
            first, rest = nullable[0], nullable[1:]
            return [
                f"{indent}if {names[first]} is None:",
                *branches(rest, nulls | {first}, indent + "    "),
                *branches(rest, nulls, indent),
            ]

        nullable = [i for i, column in enumerate(found) if column.nullable]
        lines = [f"def pack({', '.join(names)}):", *branches(nullable, frozenset(), "    "), ""]
        lines.append("def record(value, problems):")
        holders: dict[str, str] = {}  # value.progress read once for all of its columns
        for name, path in zip(names, layout.paths, strict=True):
            *outer, attribute = path.split(".")
            holder = "value"
            if outer:
                prefix = ".".join(outer)
                if prefix not in holders:
                    holders[prefix] = f"h{len(holders)}"
                    lines.append(f"    {holders[prefix]} = value.{prefix}")
                holder = holders[prefix]
            lines.append(f"    {name} = {holder}.{attribute}")
        checks = [
            storable[0]
            for column, kind, name in zip(found, kinds, names, strict=True)
            if kind not in _RANGE_CHECKED and (storable := storability(column, name, column.name)) is not None
        ]
        # the common case packs here, not in a call of pack(): one Python call a row, not two
        if checks:
            lines += [f"    if {' and '.join(checks)}:", "        try:", *branches(nullable, frozenset(), " " * 12)]
            lines += ["        except struct.error:  # an integer past its type: sanitised below", "            pass"]
        else:
            lines += ["    try:", *branches(nullable, frozenset(), " " * 8), "    except struct.error:", "        pass"]
        lines.append("    return pack(*row(value, problems))")
        namespace["row"] = layout.row
        source = "\n".join(lines) + "\n"
        exec(compile(source, f"<COPY record of {layout.table.name}>", "exec"), namespace)  # noqa: S102 - our columns
        return cls(record=namespace["record"], source=source)


#: A progress row (``PROGRESS_COLUMNS``) as ``update_progress`` copies it.
PROGRESS = Record.of(rows.PROGRESS)
#: The record ``update_progress`` writes for a status, sanitised as ``progress_row`` does.
progress_record = PROGRESS.record


def stream(records: Iterable[bytes]) -> bytes:
    """``records`` as one whole binary COPY stream, signature and trailer included."""
    return b"".join((SIGNATURE, *records, TRAILER))
