"""The OpenAPI shape of ``/v1/events`` messages: one schema per event kind, told apart by ``event``.

Each server-sent event's ``data:`` is the JSON of :func:`revaer_core.api.stream.event_json`:
``{"id", "at", "kind", "payload"}``, where ``payload`` has the fields of the
payload class named by ``kind``. These classes exist only to describe that to
the OpenAPI document; nothing is built from them. The document describes each
message as OpenAPI 3.2 does a server-sent event: an object of its fields
(``id``, ``event``, ``data``), the JSON in ``data`` by ``contentSchema``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Union

import attrs
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Reference, Schema

from revaer_core.api.stream import RESYNC
from revaer_core.events import PAYLOAD_TYPES

#: An event id as the stream sends it and a client sends it back: decimal digits only, at most 19 (64 bits).
EVENT_ID_PATTERN = r"^[0-9]{1,19}$"
EVENT_STREAM = "text/event-stream"


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

#: The ``event:`` name of each message class's messages, by the class's schema name.
_EVENT_NAMES = {cls.__name__: kind for cls, kind in zip(MESSAGE_CLASSES, PAYLOAD_TYPES, strict=True)}
_EVENT_NAMES[ResyncNotice.__name__] = RESYNC


def _message_schema(data: Reference) -> Schema:
    name = data.ref.rsplit("/", 1)[1].rsplit("_", 1)[-1]  # the registry's key holds the module until it is short
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["data", "event", "id"],
        properties={
            "id": Schema(type=OpenAPIType.STRING, pattern=EVENT_ID_PATTERN),
            "event": Schema(type=OpenAPIType.STRING, const=_EVENT_NAMES[name]),
            "data": Schema(type=OpenAPIType.STRING, content_media_type="application/json", content_schema=data),
        },
    )


@dataclass
class EventStreamOperation(Operation):
    """The operation of ``/v1/events``: its 200 answer made a stream of messages, each an object of SSE fields.

    Litestar writes the answer's schema as the union of what ``data:`` holds;
    this moves each member under its message's ``data``, beside its ``event`` name.
    """

    def __post_init__(self) -> None:
        answer = (self.responses or {}).get("200")
        assert isinstance(answer, OpenAPIResponse) and answer.content is not None
        union = answer.content[EVENT_STREAM].schema
        assert isinstance(union, Schema) and union.one_of is not None
        members = [m for m in union.one_of if isinstance(m, Reference)]
        answer.content[EVENT_STREAM] = OpenAPIMediaType(schema=Schema(one_of=[_message_schema(m) for m in members]))


__all__ = ["EVENT_ID_PATTERN", "MESSAGE_CLASSES", "RESYNC", "EventData", "EventStreamOperation", "ResyncNotice"]
