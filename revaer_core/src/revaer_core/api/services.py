"""What every route handler shares: the services it reads, the write guard, and OpenAPI helpers.

Kept apart from :mod:`revaer_core.api.app` so the read routes there and the
control routes in :mod:`revaer_core.api.control` use one definition of each.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from uuid import UUID

import attrs
from anyio import to_thread
from litestar import Response
from litestar.connection import ASGIConnection
from litestar.enums import HttpMethod
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import PathParameter
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from revaer_core.api import operations
from revaer_core.api.models import Problem, public_json
from revaer_core.api.probe import StoreProbe
from revaer_core.api.stream import StreamHub
from revaer_core.bus import EventBus
from revaer_core.control.controller import Controller
from revaer_core.control.token import Access, ApiAccess
from revaer_core.errors import InvalidInput
from revaer_core.health import HealthBoard
from revaer_core.metrics import Metrics
from revaer_core.settings import ApiSettings
from revaer_core.status import TorrentStatus
from revaer_core.store import RuntimeStore

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"


async def blocking(call: Callable[[], T]) -> T:
    """Run ``call`` on a worker thread from an async handler.

    The handlers of ``/v1/torrents/{torrent_id}`` (GET, DELETE, PATCH) are async
    and use this instead of ``sync_to_thread``: Litestar 2.25 returns an
    unawaited coroutine for one of three ``sync_to_thread`` handlers on a path.
    """
    return await to_thread.run_sync(call)


#: The OpenAPI security requirement of every write route.
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

_UUID_DESCRIPTION = "The torrent's id: a UUID in its 8-4-4-4-12 form (braces, `urn:uuid:` and bare hex are refused)."
TorrentIdPath = Annotated[
    str,
    PathParameter(description=_UUID_DESCRIPTION, schema_extra={"format": "uuid", "pattern": operations.UUID_PATTERN}),
]
#: What a torrent reference may look like: at least 4 hex digits first, then hex digits and hyphens.
REF_PATTERN = r"^[0-9a-fA-F]{4}[0-9a-fA-F-]{0,60}$"
_REF = re.compile(REF_PATTERN)


def check_ref(ref: str) -> None:
    """Refuse a torrent reference of a form the document does not state (braces, ``urn:uuid:``, too short)."""
    if not _REF.fullmatch(ref):
        raise InvalidInput(
            f"{ref!r} is not a torrent id: give its UUID (8-4-4-4-12 form), or at least 4 leading hex digits "
            "of the UUID or of the info-hash (see 'revaer torrents list')"
        )


#: The parameter of a torrent reference; its schema is :class:`TorrentRefSchema`'s, which depends on the app.
_REF_PARAMETER = PathParameter()
TorrentRefPath = Annotated[str, _REF_PARAMETER]


class TorrentRefSchema(OpenAPISchemaPlugin):
    """The OpenAPI schema of a :data:`TorrentRefPath`: the forms of torrent id the app takes, and no others.

    Inside ``revaer run`` the daemon's catalog resolves a unique prefix of the
    id or of the info-hash; a stand-alone ``revaer api`` reads the store by id,
    so its document says UUID only, as :data:`TorrentIdPath` does.
    """

    def __init__(self, *, prefixes: bool) -> None:
        self.prefixes = prefixes

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return False

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.kwarg_definition is _REF_PARAMETER

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        if not self.prefixes:
            return Schema(
                type=OpenAPIType.STRING, format=OpenAPIFormat.UUID, pattern=operations.UUID_PATTERN,
                description=_UUID_DESCRIPTION,
            )  # fmt: skip
        return Schema(
            type=OpenAPIType.STRING,
            pattern=REF_PATTERN,
            description="The torrent's id (a UUID in its 8-4-4-4-12 form), or a unique prefix of it or of the "
            "info-hash, at least 4 hex digits.",
        )

    def check(self, ref: str) -> None:
        """Refuse ``ref`` with 400 unless it has a form this schema states."""
        if self.prefixes:
            check_ref(ref)
        else:
            operations.parse_torrent_id(ref)


@attrs.frozen
class Services:
    """What the handlers read: the store always, the live runtime when ``revaer run`` serves the API."""

    store: RuntimeStore
    probe: StoreProbe  #: the store's health, probed off the request path
    bus: EventBus | None
    health: HealthBoard | None
    metrics: Metrics
    catalog: Mapping[UUID, TorrentStatus] | None
    heartbeat: float
    controller: Controller | None = None  #: the daemon's control operations; ``None`` in a stand-alone API
    max_upload_bytes: int = ApiSettings().max_upload_bytes  #: the largest .torrent an add takes
    streams: StreamHub | None = None  #: the event streams' shared bus subscription, with a bus

    def lookup(self, ref: str) -> TorrentStatus:
        """The torrent ``ref`` names: by prefix in the live catalog, else by UUID in the store."""
        if self.controller is not None:
            return self.controller.resolve(ref)
        return operations.get_torrent(self.store, operations.parse_torrent_id(ref), self.catalog)


class ShapedResponse(Response[Any]):
    """Renders attrs models with :func:`public_json`, as ``--json`` does: identical shapes, secrets redacted."""

    def render(self, content: Any, media_type: str, enc_hook: Any = None) -> bytes:
        if attrs.has(type(content)):
            return json.dumps(public_json(content), ensure_ascii=False).encode()
        if enc_hook is None:
            return super().render(content, media_type)
        return super().render(content, media_type, enc_hook)


#: Why a route answers these statuses, whatever it does: the access rules of every route.
_ACCESS_REFUSALS = {
    401: "Unauthorized: off loopback a request without a token (or with a wrong one); "
    "on a write, a request without the token",
    403: "Forbidden: a loopback API asked under a Host name that is not a loopback one (DNS rebinding); "
    "on a write, the read-only token",
}


def problems(*codes: int, token: bool = True) -> dict[int, ResponseSpec]:
    """OpenAPI entries saying these status codes answer with a problem document.

    403 is always among them (the Host check of a loopback API), 401 too unless
    ``token`` is false (a route that answers without a token, off loopback too).
    """
    every = {*codes, 403, *((401,) if token else ())}
    return {
        code: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=_ACCESS_REFUSALS.get(code, http.HTTPStatus(code).phrase),
            generate_examples=False,
        )
        for code in sorted(every)
    }


ACCESS_STATE = "revaer_access"  #: the app state key of its :class:`ApiAccess`

#: ``opt`` of a route that answers without a token everywhere (the liveness answer of ``/health``).
PUBLIC = {"revaer_public": True}
#: ``opt`` of ``/metrics``: public off loopback when ``[api] metrics_public`` says so.
METRICS = {"revaer_metrics": True}

_WHERE = (
    "the token is in the daemon's data dir (api-token), or [api] token / REVAER_API_TOKEN when set; "
    "[api] read_token / REVAER_API_READ_TOKEN is enough to read"
)


def _access(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiAccess:
    access: ApiAccess = connection.app.state[ACCESS_STATE]
    return access


def may_read(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether this request may read: always on loopback, with either token off it."""
    return _access(connection).may_read(connection.headers.get("authorization", ""))


async def require_read_access(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Off loopback every route needs a token (the read-only one will do), the OpenAPI document included.

    Exempt: routes marked :data:`PUBLIC`, and ``/metrics`` when ``[api] metrics_public`` is set.
    Async though it never waits, as every guard and hook here: Litestar runs a
    sync one on a worker thread, two thread hops per request that, with the
    engine's thread holding the GIL, cost a switch interval each way.
    """
    access = _access(connection)
    if handler.opt.get("revaer_public") or (handler.opt.get("revaer_metrics") and access.metrics_public):
        return
    if not access.may_read(connection.headers.get("authorization", "")):
        raise NotAuthorizedException(
            detail=f"this API listens off loopback and every endpoint needs 'Authorization: Bearer <token>': {_WHERE}",
            headers={"WWW-Authenticate": 'Bearer realm="revaer"'},
        )


async def require_write_access(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Every write needs ``Authorization: Bearer <token>``, on loopback too; the read-only token gets 403.

    A web page cannot read the token, so no page a user visits can act on the
    daemon through a loopback API, with or without the browser's ``Origin``.
    """
    granted = _access(connection).grant(connection.headers.get("authorization", ""))
    if granted is Access.READ:
        raise PermissionDeniedException(
            detail="the token sent is the read-only one ([api] read_token); this endpoint changes the runtime "
            "and needs the token ([api] token, or the api-token file in the daemon's data dir)"
        )
    if granted is not Access.WRITE:
        raise NotAuthorizedException(
            detail="this endpoint needs 'Authorization: Bearer <token>': the token is in the daemon's data dir "
            "(api-token), or [api] token / REVAER_API_TOKEN when set",
            headers={"WWW-Authenticate": 'Bearer realm="revaer"'},
        )


def options_routes(handlers: Iterable[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """One ``OPTIONS`` route per path, its ``Allow`` naming every method the path serves.

    Litestar makes its own for the first handler of a path and keeps it when
    more handlers join the path (``/v1/torrents`` said ``GET, OPTIONS``, not
    ``POST``); these go first in the route list, so Litestar makes none.
    """
    methods: dict[str, set[str]] = {}
    for handler in handlers:
        for path in handler.paths:
            methods.setdefault(path, {"OPTIONS"}).update(handler.http_methods)
    return [_options(path, ", ".join(sorted(allowed))) for path, allowed in methods.items()]


def _options(path: str, allow: str) -> HTTPRouteHandler:
    def answer() -> Response[None]:
        return Response(content=None, status_code=204, headers={"Allow": allow})

    return HTTPRouteHandler(path=path, http_method=[HttpMethod.OPTIONS], include_in_schema=False, sync_to_thread=False)(
        answer
    )
