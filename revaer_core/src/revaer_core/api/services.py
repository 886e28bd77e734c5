"""What every route handler shares: the services it reads, the write guard, and OpenAPI helpers.

Kept apart from :mod:`revaer_core.api.app` so the read routes there and the
control routes in :mod:`revaer_core.api.control` use one definition of each.
"""

from __future__ import annotations

import hmac
import http
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar
from uuid import UUID

import attrs
from anyio import to_thread
from litestar import Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter

from revaer_core.api import operations
from revaer_core.api.models import Problem, public_json
from revaer_core.api.probe import StoreProbe
from revaer_core.api.stream import StreamHub
from revaer_core.bus import EventBus
from revaer_core.control.controller import Controller
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

TorrentIdPath = Annotated[str, PathParameter(description="The torrent's id, a UUID.", schema_extra={"format": "uuid"})]
TorrentRefPath = Annotated[
    str,
    PathParameter(
        description="The torrent's id (a UUID), or inside `revaer run` a unique prefix of it or of the info-hash."
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


TOKEN_STATE = "revaer_write_token"  # noqa: S105 - the key under which the token is kept, not a token


def require_write_access(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Every write needs ``Authorization: Bearer <token>``, on loopback too.

    A web page cannot read the token, so no page a user visits can act on the
    daemon through a loopback API, with or without the browser's ``Origin``.
    """
    token: str | None = connection.app.state.get(TOKEN_STATE)
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise NotAuthorizedException(
            detail="this endpoint needs 'Authorization: Bearer <token>': the token is in the daemon's data dir "
            "(api-token), or [api] token / REVAER_API_TOKEN when set",
            headers={"WWW-Authenticate": 'Bearer realm="revaer"'},
        )
