"""What every route handler shares: the services it reads, the write guard, and OpenAPI helpers.

Kept apart from :mod:`revaer_core.api.app` so the read routes there and the
control routes in :mod:`revaer_core.api.control` use one definition of each.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar
from uuid import UUID

import attrs
from anyio import to_thread
from litestar import Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter

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

TorrentIdPath = Annotated[
    str,
    PathParameter(
        description="The torrent's id: a UUID in its 8-4-4-4-12 form (braces, `urn:uuid:` and bare hex are refused).",
        schema_extra={"format": "uuid", "pattern": operations.UUID_PATTERN},
    ),
]
#: What a torrent reference may look like: at least 4 hex digits first, then hex digits and hyphens.
REF_PATTERN = r"^[0-9a-fA-F]{4}[0-9a-fA-F-]{0,60}$"
_REF = re.compile(REF_PATTERN)


def check_ref(ref: str) -> None:
    """Refuse a torrent reference of a form the document does not state (braces, ``urn:uuid:``, too short)."""
    if not _REF.match(ref):
        raise InvalidInput(
            f"{ref!r} is not a torrent id: give its UUID (8-4-4-4-12 form), or at least 4 leading hex digits "
            "of the UUID or of the info-hash (see 'revaer torrents list')"
        )


TorrentRefPath = Annotated[
    str,
    PathParameter(
        description="The torrent's id (a UUID in its 8-4-4-4-12 form), or inside `revaer run` a unique prefix "
        "of it or of the info-hash, at least 4 hex digits.",
        pattern=REF_PATTERN,
    ),
]


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


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries saying these status codes answer with a problem document."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=http.HTTPStatus(code).phrase,
            generate_examples=False,
        )
        for code in codes
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


def require_read_access(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Off loopback every route needs a token (the read-only one will do), the OpenAPI document included.

    Exempt: routes marked :data:`PUBLIC`, and ``/metrics`` when ``[api] metrics_public`` is set.
    """
    access = _access(connection)
    if handler.opt.get("revaer_public") or (handler.opt.get("revaer_metrics") and access.metrics_public):
        return
    if not access.may_read(connection.headers.get("authorization", "")):
        raise NotAuthorizedException(
            detail=f"this API listens off loopback and every endpoint needs 'Authorization: Bearer <token>': {_WHERE}",
            headers={"WWW-Authenticate": 'Bearer realm="revaer"'},
        )


def require_write_access(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
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
