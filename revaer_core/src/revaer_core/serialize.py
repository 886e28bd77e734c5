"""Plain JSON shapes of Revaer's values, shared by the CLI's ``--json`` and the HTTP API."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs


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
