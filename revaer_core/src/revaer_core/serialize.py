"""Plain JSON shapes of Revaer's values, and back: one shape for the CLI's ``--json``, the HTTP API,
the FsOps job journal and any store that keeps Revaer's values as JSON documents."""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import attrs

T = TypeVar("T")


def _value(value: Any) -> Any:
    """A value that is not a container or an attrs instance, as JSON-ready data."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_value(v) for v in value)
    return value


def _same(value: T) -> T:
    return value


class JsonShape:
    """Turns values into JSON-ready data, with ``text`` applied to every string the data holds.

    A converter is built once per type it meets: an attrs instance becomes a
    dict of its fields by name, tuples and lists become lists, a set a sorted
    list, a dict keeps its keys (converted, not ``text``-ed); datetimes are
    ISO 8601, UUIDs and paths strings, enums their values. It is
    ``attrs.asdict`` with a value serializer, without its generic machinery
    per field (which cost 90 µs a torrent status, a third of a restart's
    listing of 2,000 of them).
    """

    def __init__(self, text: Callable[[str], str] | None = None) -> None:
        self._text = text or _same
        self._by_type: dict[type, Callable[[Any], Any]] = {
            type(None): _same,
            bool: _same,
            int: _same,
            float: _same,
            str: self._text,
        }

    def __call__(self, value: Any) -> Any:
        """``value`` (an attrs instance, or lists and dicts of them) as JSON-ready data."""
        if attrs.has(type(value)):
            return self.data(value)
        if isinstance(value, Mapping):
            return {str(k): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return self.data(_value(value))

    def data(self, value: Any) -> Any:
        """``value`` as JSON-ready data, whatever it is."""
        convert = self._by_type.get(type(value))
        if convert is None:
            convert = self._by_type[type(value)] = self._converter(type(value))
        return convert(value)

    def _converter(self, kind: type) -> Callable[[Any], Any]:
        data = self.data
        if attrs.has(kind):
            names = tuple(field.name for field in attrs.fields(kind))
            return lambda value: {name: data(getattr(value, name)) for name in names}
        if issubclass(kind, frozenset | set):  # sorted as JSON data, before any ``text``
            return lambda value: [data(v) for v in _value(value)]
        if issubclass(kind, datetime | UUID | Path | enum.Enum):
            return lambda value: data(_value(value))
        if issubclass(kind, list | tuple):
            return lambda value: [data(v) for v in value]
        if issubclass(kind, dict):
            return lambda value: {_value(k): data(v) for k, v in value.items()}
        if issubclass(kind, str):
            return self._text
        return _same


_PLAIN = JsonShape()


def to_json(value: Any) -> Any:
    """``value`` (an attrs instance, or lists and dicts of them) as JSON-ready data."""
    return _PLAIN(value)


def from_json(cls: type[T], data: Any) -> T:
    """The attrs instance of ``cls`` that :func:`to_json` turned into ``data``.

    Follows the field types: UUIDs, aware datetimes, enums, nested attrs
    classes, ``X | None`` and ``tuple[X, ...]``; a ``str``, ``int`` or ``bool``
    field must hold one. Raises ``ValueError`` or ``TypeError`` on data of
    another shape (a document read from disk may be damaged or forged).
    """
    return _decode(cls, data)  # type: ignore[no-any-return]


def _decode(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if data is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner, data)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(_decode(item, v) for v in data)
    if origin in (frozenset, set):
        return frozenset(_decode(typing.get_args(tp)[0], v) for v in data)
    if isinstance(tp, type) and attrs.has(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _decode(hints[f.name], data[f.name]) for f in attrs.fields(tp) if f.name in data})
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp in (UUID, Path) or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return tp(data)
    if tp is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if tp in _SCALARS and type(data) is not tp:
        raise TypeError(f"expected {tp.__name__}, got {type(data).__name__}")
    return data


_SCALARS = (str, int, bool, float)
