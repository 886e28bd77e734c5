"""Plain JSON shapes of Revaer's values, and back: one shape for the CLI's ``--json``, the HTTP API,
the FsOps job journal and any store that keeps Revaer's values as JSON documents."""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import attrs

T = TypeVar("T")


def _value(instance: object, attribute: object, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_value(instance, attribute, v) for v in value)
    return value


def to_json(value: Any) -> Any:
    """``value`` (an attrs instance, or lists and dicts of them) as JSON-ready data."""
    if attrs.has(type(value)):
        return attrs.asdict(value, value_serializer=_value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return _value(None, None, value)


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
