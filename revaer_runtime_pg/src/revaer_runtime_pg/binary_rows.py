"""PostgreSQL's binary form of progress rows: one array of composite values, one ``struct`` call a row.

Progress is the store's hottest write (every downloading torrent, every
flush) and all of its columns are fixed-width, so a row packs in one C call
into bytes, which the garbage collector does not track. psycopg's
``write_row`` dumped each value through its adapters and, with the batch of
row tuples it was fed, caused most of the collections that made the writer
thread cost about as much as the event path itself.

A flush sends its rows as one parameter, a binary array of the staging
table's row type, to one ``UPDATE … FROM unnest(…)``: a single message to
the server, where a binary COPY of the same rows took a round trip to start,
one per 128 KiB of rows, and one to end. Each of those gives up the GIL and
waits to take it back from the thread publishing events (up to the 5 ms
switch interval), and so stretched a 10,000-row flush from about 90 ms to
about 170 ms whenever that thread was busy (as one array: about 125 ms).

The packing code is generated from the row's :class:`~revaer_runtime_pg.layout.Layout`
(the table's columns, their types and nullability), as the layout's row
function is: a column added to the progress columns changes the record with
it, and a column that is not fixed-width stops the import instead of
writing a record the server misreads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

from revaer_runtime_pg import rows
from revaer_runtime_pg.layout import Layout, storability
from revaer_runtime_pg.schema import copy_type

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  #: timestamptz counts microseconds from here
_MICROSECOND = timedelta(microseconds=1)

#: Each fixed-width type: its ``struct`` code, its length on the wire, how a value ``{}`` becomes it, and its
#: type OID (a composite value names each field's type, and the server refuses one that is not the column's).
_FIXED: dict[str, tuple[str, int, str, int]] = {
    "uuid": ("16s", 16, "{}.int.to_bytes(16)", 2950),  # what UUID.bytes does, without its Python call
    "int8": ("q", 8, "{}", 20),
    "int4": ("i", 4, "{}", 23),
    "int2": ("h", 2, "{}", 21),
    "float8": ("d", 8, "{}", 701),
    "bool": ("?", 1, "{}", 16),
    "timestamptz": ("q", 8, "({} - _PG_EPOCH) // _MICROSECOND", 1184),  # microseconds since 2000-01-01 UTC
}
#: The integer types, whose range ``struct`` checks itself (``pack`` raises past it).
_RANGE_CHECKED = frozenset({"int8", "int4", "int2"})


@attrs.frozen
class Record:
    """A layout's rows as elements of a binary array of composite values: each one ``bytes``, one ``struct`` call."""

    #: The record that stores a value, sanitised as the layout's row is (what was changed goes to the list).
    #: A value is packed as it is when every check ``struct`` does not make itself passes (a time's year),
    #: and only when ``pack`` raises (an integer past its type) is the row built and sanitised: the common
    #: case checks nothing twice. The generated function itself, called once per torrent and flush.
    record: Callable[[Any, list[str]], bytes]
    source: str  #: the Python source of ``record`` (and the ``pack`` it calls), generated from the layout

    @classmethod
    def of(cls, layout: Layout) -> Record:
        """The record of ``layout``'s columns, filled as its row is, sanitised by its row function when needed.

        An element is its length (int32), then the composite value: its field
        count (int32) and each field as its type's OID, its length (int32)
        and its bytes. A NULL is the OID and the length -1 alone, so each
        combination of NULLs in the nullable columns has a ``struct`` of its
        own, and a length of its own.
        """
        found = [layout.table.c[name] for name in layout.columns]
        kinds = [copy_type(column) for column in found]
        for column, kind in zip(found, kinds, strict=True):
            if kind not in _FIXED:
                raise TypeError(f"{layout.table.name}.{column.name} ({kind}) is not a fixed-width field")
            if column.name in layout.converted:
                raise TypeError(f"{layout.table.name}.{column.name} is converted; a record packs values as they are")
        names = [f"v{i}" for i in range(len(found))]
        namespace: dict[str, Any] = {"struct": struct, "_PG_EPOCH": _PG_EPOCH, "_MICROSECOND": _MICROSECOND}
        structs: dict[frozenset[int], str] = {}  #: each combination of NULLs: the name of its struct

        def packing(nulls: frozenset[int], indent: str) -> str:
            formats, values = [">ii"], [str(len(found))]
            for i, kind in enumerate(kinds):
                code, length, value, oid = _FIXED[kind]
                if i in nulls:
                    formats.append("ii")
                    values += [str(oid), "-1"]
                else:
                    formats.append(f"ii{code}")
                    values += [str(oid), str(length), value.format(names[i])]
            key = structs.get(nulls)
            if key is None:
                key = structs[nulls] = f"_ROW_{len(structs)}"
                namespace[key] = struct.Struct(" ".join(formats))
            size = namespace[key].size - 4  # the element's length leaves out its own four bytes
            return f"{indent}return {key}.pack({size}, {', '.join(values)})"

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
        exec(compile(source, f"<array element of {layout.table.name}>", "exec"), namespace)  # noqa: S102 - our columns
        return cls(record=namespace["record"], source=source)


#: A progress row (``PROGRESS_COLUMNS``) as ``update_progress`` sends it.
PROGRESS = Record.of(rows.PROGRESS)
#: The array element ``update_progress`` sends for a status, sanitised as ``progress_row`` does.
progress_record = PROGRESS.record


@attrs.frozen
class Array:
    """A binary array built by :func:`array`, which psycopg sends as it is.

    Its type is left to the server (OID 0): the statement casts the
    parameter to the array type, which also names the element type the
    array's header must carry.
    """

    data: bytes


def array(element_type: int, records: Sequence[bytes]) -> Array:
    """``records`` as one binary one-dimensional array of the composite type ``element_type`` (its OID)."""
    if not records:
        return Array(struct.pack(">iii", 0, 0, element_type))
    return Array(b"".join((struct.pack(">iiiii", 1, 0, element_type, len(records), 1), *records)))


class _ArrayDumper(Dumper):
    format = Format.BINARY
    oid = 0

    def dump(self, obj: Array) -> Buffer:
        return obj.data


psycopg.adapters.register_dumper(Array, _ArrayDumper)
