"""The request bodies the control routes take, read strictly, and their OpenAPI description.

The bodies are msgspec structs whose ``Meta`` states what each field takes,
for the document only: the control operations check the values (a priority
of 9, a negative rate) and say what is wrong in their own words. The handlers
read the bodies with :func:`decode` (strict: ``"1"`` is neither 1 nor true),
not through Litestar's ``data`` parameter, whose conversion is lenient and
whose schema drops the constraints; the document gets msgspec's own JSON
Schema of each, through :func:`json_operation` and :func:`add_operation`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, TypeVar

import msgspec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from revaer_core.control.requests import MAX_LABEL_LENGTH, MAX_RATE
from revaer_core.errors import InvalidInput

T = TypeVar("T")


def _states(**schema: Any) -> msgspec.Meta:
    """Constraints the document states and the control operations check, each in its own words."""
    return msgspec.Meta(extra_json_schema=schema)


Rate = Annotated[int, _states(minimum=0, maximum=MAX_RATE, description="bytes/s; 0 for no limit")]
Label = Annotated[str, _states(minLength=1, maxLength=MAX_LABEL_LENGTH)]
FileIndex = Annotated[int, _states(minimum=0)]
Priority = Annotated[int, _states(minimum=0, maximum=7)]
IndexKey = Annotated[str, _states(pattern=r"^[0-9]{1,9}$")]  #: a file index as a JSON object key


class AddTorrentJson(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body of an add: exactly one of a magnet link or base64 metainfo, and the user's choices."""

    magnet: str | None = None
    metainfo: str | None = None  #: the .torrent's bytes, base64
    paused: bool = False
    sequential: bool = False
    save_path: str | None = None  #: inside [engine] allowed_save_roots; default the download dir
    labels: list[Label] = msgspec.field(default_factory=list)
    skip_files: list[FileIndex] = msgspec.field(default_factory=list)  #: file indices to skip (priority 0)
    file_priorities: dict[IndexKey, Priority] = msgspec.field(default_factory=dict)  #: file index -> priority 0..7
    download_limit: Rate | None = None  #: 0 or null for none
    upload_limit: Rate | None = None
    resume_data: str | None = None  #: libtorrent resume data, base64, with metainfo only: progress without a recheck


class OptionsJson(msgspec.Struct, frozen=True, kw_only=True):
    """Options to change; a key left out stays as it is, a limit of 0 or null lifts it."""

    sequential: bool | None = None
    download_limit: Rate | msgspec.UnsetType | None = msgspec.UNSET
    upload_limit: Rate | msgspec.UnsetType | None = msgspec.UNSET
    labels: list[Label] | None = None  #: replaces the torrent's labels


class FilesJson(msgspec.Struct, frozen=True, kw_only=True):
    """File priorities to set by index; ``skip`` is priority 0."""

    skip: list[FileIndex] = msgspec.field(default_factory=list)
    priorities: dict[IndexKey, Priority] = msgspec.field(default_factory=dict)


def decode(data: bytes, kind: type[T]) -> T:
    """``data`` as a ``kind``, strictly, or InvalidInput saying what is wrong with it.

    Strict but for one thing: a number with no fraction (``5.0``) is an integer,
    as JSON Schema counts it, where msgspec alone would refuse it.
    """
    try:
        return msgspec.convert(_integral(msgspec.json.decode(data)), type=kind, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"request body: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidInput("request body is not valid JSON") from None


def _integral(value: Any) -> Any:
    """``value`` with every float that has no fraction made an int, at any depth."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


_ALIASES = {f.metadata.get("alias", f.name): f.name for f in dataclasses.fields(Schema)}


def _schema(data: Any) -> Any:
    """A JSON Schema (as msgspec writes it) as Litestar's :class:`Schema` objects."""
    if isinstance(data, list):
        return [_schema(item) for item in data]
    if not isinstance(data, dict):
        return data
    if set(data) - set(_ALIASES) - {"$ref"}:  # a map of names (``properties``), not a schema
        return {key: _schema(value) for key, value in data.items()}
    fields = {_ALIASES[key]: value for key, value in data.items() if key in _ALIASES}
    for key in ("properties", "pattern_properties"):
        if key in fields:
            fields[key] = {name: _schema(value) for name, value in fields[key].items()}
    for key in ("items", "additional_properties", "property_names", "any_of", "one_of", "all_of", "not_"):
        if key in fields:
            fields[key] = _schema(fields[key])
    if "type" in fields and isinstance(fields["type"], str):
        fields["type"] = OpenAPIType(fields["type"])
    return Schema(**fields)


def body_schema(kind: type[msgspec.Struct]) -> Schema:
    """msgspec's JSON Schema of ``kind``, with every constraint its ``Meta`` states."""
    (_,), components = msgspec.json.schema_components([kind])
    schema: Schema = _schema(components[kind.__name__])
    return schema


def _operation(content: dict[str, OpenAPIMediaType], name: str) -> type[Operation]:
    """An :class:`Operation` class whose request body is ``content`` (Litestar makes the operation, we the body)."""

    def post_init(self: Operation) -> None:
        self.request_body = RequestBody(content=content, required=True)

    return dataclasses.dataclass(type(name, (Operation,), {"__post_init__": post_init}))


def json_operation(kind: type[msgspec.Struct]) -> type[Operation]:
    """The OpenAPI operation of a route whose body is a JSON ``kind``, read by :func:`decode`."""
    return _operation({"application/json": OpenAPIMediaType(schema=body_schema(kind))}, f"{kind.__name__}Operation")


def add_operation() -> type[Operation]:
    """The OpenAPI operation of the add: a .torrent as it is, as a multipart form, or JSON."""
    text = Schema(type=OpenAPIType.STRING)
    form = Schema(
        type=OpenAPIType.OBJECT,
        required=["torrent"],
        properties={
            "torrent": Schema(type=OpenAPIType.STRING, content_media_type="application/x-bittorrent"),
            "paused": text,
            "sequential": text,
            "save_path": text,
            "label": text,
            "skip_file": text,
            "priority": Schema(type=OpenAPIType.STRING, description="INDEX=PRIORITY, e.g. 2=7"),
            "download_limit": text,
            "upload_limit": text,
        },
    )
    return _operation(
        {
            "application/x-bittorrent": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
            ),
            "multipart/form-data": OpenAPIMediaType(schema=form),
            "application/json": OpenAPIMediaType(schema=body_schema(AddTorrentJson)),
        },
        "AddTorrentOperation",
    )
