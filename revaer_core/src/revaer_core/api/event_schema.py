"""The OpenAPI shape of ``/v1/events`` messages: one schema per event kind, told apart by ``kind``.

Each server-sent event's ``data:`` is the JSON of :func:`revaer_core.api.stream.event_json`:
``{"id", "at", "kind", "payload"}``, where ``payload`` has the fields of the
payload class named by ``kind``. These classes exist only to describe that to
the OpenAPI document; nothing is built from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Union

import attrs

from revaer_core.api.stream import RESYNC
from revaer_core.events import PAYLOAD_TYPES


@attrs.frozen
class ResyncNotice:
    """The data of an ``event: resync`` message: some events were missed; re-read ``/v1/torrents``."""

    reason: str
    dropped: int  #: how many events were missed
    last_id: int  #: the id the stream goes on after


def _message_class(kind: str, payload: type[Any]) -> type[Any]:
    kind_type: Any = Literal[kind]  # a literal made at run time: the schema's ``const``
    fields = {
        "id": attrs.field(type=int),
        "at": attrs.field(type=datetime),
        "kind": attrs.field(type=kind_type),
        "payload": attrs.field(type=payload),
    }
    cls = attrs.make_class(f"{payload.__name__}Message", fields, frozen=True)
    cls.__doc__ = (
        f"An ``event: {kind}`` message's data: the event's id and time, and its ``{payload.__name__}`` payload."
    )
    return cls


#: One message class per event kind, in the bus's order.
MESSAGE_CLASSES: tuple[type[Any], ...] = tuple(_message_class(k, c) for k, c in PAYLOAD_TYPES.items())

#: What one message's ``data:`` may hold: an event of one kind, or a resync notice.
EventData = Union[(*MESSAGE_CLASSES, ResyncNotice)]  # type: ignore[valid-type]

__all__ = ["MESSAGE_CLASSES", "RESYNC", "EventData", "ResyncNotice"]
