"""The HTTP API: a Litestar app over a runtime store, and, inside ``revaer run``, the live runtime.

``create_app(store)`` alone serves what the store holds (``revaer api``); the
daemon also hands in its bus, health board, metrics and catalog. Every error
is an RFC 9457 problem document; every JSON body is written by
:func:`revaer_core.api.models.public_json`, the serializer the CLI's ``--json`` uses.
"""

from __future__ import annotations

import http
import logging
import re
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from litestar import Litestar, Request, Response, get, head, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    PermissionDeniedException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import Stream
from litestar.types import ASGIApp, ExceptionHandlersMap, Receive, Scope, Send

from revaer_core.api import control, incidents, operations
from revaer_core.api.event_schema import EVENT_ID_PATTERN, EventData, EventStreamOperation
from revaer_core.api.incidents import StoreIncident
from revaer_core.api.models import HealthReport, JobDetail, JobPage, Liveness, Problem, TorrentPage
from revaer_core.api.probe import StoreProbe
from revaer_core.api.services import (
    ACCESS_STATE,
    BEARER,
    METRICS,
    PROBLEM_JSON,
    PUBLIC,
    Services,
    ShapedResponse,
    TorrentIdPath,
    TorrentRefPath,
    TorrentRefSchema,
    blocking,
    may_read,
    options_routes,
    problems,
    require_read_access,
    require_write_access,
)
from revaer_core.api.stream import HEARTBEAT_SECONDS, StreamHub, TooManyStreams, event_stream
from revaer_core.bus import EventBus
from revaer_core.control.token import ApiAccess
from revaer_core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Refused,
    RetryRefused,
    RevaerError,
    TooLarge,
)
from revaer_core.health import HealthBoard
from revaer_core.jobs import FsJob, JobStatus
from revaer_core.metrics import Metrics
from revaer_core.preflight import check_exposure, is_loopback
from revaer_core.query import CURSOR_PATTERN, DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE, TorrentSort
from revaer_core.redact import redact
from revaer_core.settings import ApiSettings
from revaer_core.status import TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore

if TYPE_CHECKING:
    from revaer_core.control.controller import Controller

log = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4"  #: Litestar appends the charset
OPENAPI_PATH = "/schema"  #: the document is at /schema/openapi.json
STREAMS_STATE = "revaer_streams"  #: the app state key of its :class:`StreamHub` (``None`` without a bus)

#: Host names a loopback-bound API answers to; any other Host header is a DNS-rebinding attempt.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

#: Python parameter names that differ from the query parameter a client sends.
_QUERY_NAMES = {"states": "state", "statuses": "status"}


# -- problems ------------------------------------------------------------------------


#: Most characters of a problem's ``detail`` and ``instance``: both can echo a caller's input.
MAX_ECHO = 500


def bounded(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` as a problem may echo it: ASCII only (anything else escaped) and at most ``limit`` characters.

    A 20,000-character id must not come back as a 40 KB answer, nor raw
    control or non-ASCII characters reach a client's terminal or log.
    """
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in escaped)
    if len(escaped) <= limit:
        return escaped
    return f"{escaped[:limit]}... ({len(escaped) - limit} more characters)"


def _problem_response(
    status: int,
    kind: str,
    detail: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    incident: str | None = None,
) -> Response[Any]:
    problem = Problem(
        type=f"urn:revaer:problem:{kind}",
        title=http.HTTPStatus(status).phrase,
        status=status,
        detail=bounded(redact(detail)),
        instance=bounded(path, 200),
        incident=incident,
    )
    return ShapedResponse(content=problem, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


#: Problem kinds and statuses of the input errors, most specific first.
_INPUT_PROBLEMS: tuple[tuple[type[InvalidInput], int, str], ...] = (
    (NotFound, 404, "not-found"),
    (RetryRefused, 409, "retry-refused"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "too-large"),
    (Refused, 422, "refused"),
    (InvalidInput, 400, "invalid-input"),
)


def _revaer_error(request: Request[Any, Any, Any], exc: RevaerError) -> Response[Any]:
    for kind, status, name in _INPUT_PROBLEMS:
        if isinstance(exc, kind):
            return _problem_response(status, name, str(exc), request.url.path)
    if isinstance(exc, StoreIncident):  # the store's words are in the log already, under this id
        return _problem_response(503, "store-unavailable", str(exc), request.url.path, incident=exc.incident)
    # the runtime's own words (a write the store did not confirm in time): said, and logged under an id
    incident = incidents.new_id()
    log.warning("incident %s: %s %s: %s", incident, request.method, bounded(request.url.path, 200), redact(str(exc)))
    detail = f"{exc} (incident {incident})"
    return _problem_response(503, "store-unavailable", detail, request.url.path, incident=incident)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    problems = [p for p in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(p, dict)]
    parts = []
    for p in problems:
        source = getattr(p.get("source"), "value", "request")
        key = _QUERY_NAMES.get(p.get("key", ""), p.get("key", "?"))
        parts.append(f"{source} parameter {key!r}: {p.get('message', 'invalid')}")
    return _problem_response(400, "invalid-input", "; ".join(parts) or str(exc.detail), request.url.path)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    kind = http.HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
    return _problem_response(exc.status_code, kind, str(exc.detail), request.url.path, exc.headers)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    incident = incidents.new_id()
    log.error(
        "incident %s: request %s %s failed: %s",
        incident,
        request.method,
        bounded(request.url.path, 200),
        redact(f"{type(exc).__name__}: {exc}"),
    )
    return _problem_response(
        500,
        "internal-error",
        f"internal error (incident {incident}: the server log line 'incident {incident}' has the details)",
        request.url.path,
        incident=incident,
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RevaerError: _revaer_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _internal_error,
}


# -- security ----------------------------------------------------------------------------


def _host_name(host: str) -> str:
    """The name part of a Host header: ``[::1]:80`` -> ``::1``, ``localhost:80`` -> ``localhost``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


async def _check_ref(request: Request[Any, Any, Any]) -> None:
    """A ``{torrent_id}`` in the path must have a form the document states, on every route that has one.

    Async, as :func:`_check_loopback_request`, so that Litestar runs it on the loop, not on a worker thread.
    """
    ref = request.path_params.get("torrent_id")
    if isinstance(ref, str):
        request.app.plugins.get(TorrentRefSchema).check(ref)


async def _check_loopback_request(request: Request[Any, Any, Any]) -> None:
    _check_host(request)
    await _check_ref(request)


def _check_host(request: Request[Any, Any, Any]) -> None:
    """On loopback, answer only requests addressed to a loopback name: no DNS rebinding from a web page."""
    host = request.headers.get("host", "")
    if _host_name(host).lower() not in LOOPBACK_NAMES:
        raise PermissionDeniedException(
            detail=f"Host {host!r} is not a loopback name and this API listens on loopback only"
        )


def _requests_first(hub: StreamHub) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware: while a request other than an event stream is answered, the streams' writes wait.

    Each stream write is a system call, after which the loop waits for the
    GIL behind the engine's thread; a ``/health`` request that had to wait
    for streams' writes between its own steps took three times as long.
    """

    def middleware(app: ASGIApp) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"] == EVENTS_PATH:
                await app(scope, receive, send)
                return
            with hub.serving():
                await app(scope, receive, send)

        return serve

    return middleware


# -- handlers -----------------------------------------------------------------------------

#: The schema of an optional text parameter: a string when sent, never ``null`` (Litestar writes
#: ``str | None`` as a oneOf with null, and a client told so sends the text "null").
TEXT: dict[str, Any] = {"oneOf": None, "type": "string"}

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description=f"Rows per page, 1 to {MAX_PAGE_SIZE}.")]
PageCursor = Annotated[
    str | None,
    QueryParameter(
        description=f"`next_cursor` of the previous page, as given (at most {MAX_CURSOR_LENGTH} characters of "
        "unpadded URL-safe base64); absent for the first page. A cursor that was not made by this API is refused "
        "with 400.",
        schema_extra={**TEXT, "maxLength": MAX_CURSOR_LENGTH, "pattern": CURSOR_PATTERN},  # checked by Cursor.decode
    ),
]

_EVENT_ID = re.compile(EVENT_ID_PATTERN)


@get(
    "/v1/torrents",
    sync_to_thread=True,
    tags=["torrents"],
    summary="List torrents",
    operation_id="listTorrents",
    responses=problems(400, 503),
)
def list_torrents(
    services: NamedDependency[Services],
    states: Annotated[
        list[TorrentState] | None, QueryParameter(name="state", description="Only these states (repeat for several).")
    ] = None,
    name: Annotated[
        str | None,
        QueryParameter(
            description=f"Case-insensitive substring of the name, at most {operations.MAX_SEARCH_LENGTH} characters, "
            "without NUL.",
            schema_extra={**TEXT, "maxLength": operations.MAX_SEARCH_LENGTH, "pattern": operations.SEARCH_PATTERN},
        ),
    ] = None,
    sort: Annotated[TorrentSort, QueryParameter(description="Sort key; ties are broken by id.")] = TorrentSort.ADDED,
    desc: Annotated[bool, QueryParameter(description="Newest (or last by name) first.")] = False,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> TorrentPage:
    """A page of torrents, follow ``next_cursor`` for the rest (no gaps or repeats); live inside ``revaer run``.

    The daemon lists its catalog, what the engine is doing now; a stand-alone API lists the store.
    """
    query = operations.torrent_query(
        states=states or (), name=name, sort=sort, descending=desc, limit=limit, cursor=cursor
    )
    return operations.list_torrents(services.store, query, services.catalog)


@get(
    "/v1/torrents/{torrent_id:str}",
    tags=["torrents"],
    summary="Show one torrent",
    operation_id="getTorrent",
    responses=problems(400, 404, 503),
)
async def show_torrent(services: NamedDependency[Services], torrent_id: TorrentRefPath) -> TorrentStatus:
    """The torrent's status: the live catalog's inside ``revaer run``, else the store's."""
    return await blocking(lambda: services.lookup(torrent_id))


@get(
    "/v1/fsops/jobs",
    sync_to_thread=True,
    tags=["fsops"],
    summary="List FsOps jobs",
    operation_id="listJobs",
    responses=problems(400, 503),
)
def list_jobs(
    services: NamedDependency[Services],
    statuses: Annotated[
        list[JobStatus] | None, QueryParameter(name="status", description="Only these statuses (repeat for several).")
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> JobPage:
    """A page of FsOps jobs, oldest first."""
    return operations.list_jobs(
        services.store, operations.job_query(statuses=statuses or (), limit=limit, cursor=cursor)
    )


@get(
    "/v1/fsops/jobs/{torrent_id:str}",
    sync_to_thread=True,
    tags=["fsops"],
    summary="Show a torrent's FsOps job with its history",
    operation_id="getJob",
    responses=problems(400, 404, 503),
)
def show_job(services: NamedDependency[Services], torrent_id: TorrentIdPath) -> JobDetail:
    """The job and every transition it went through (each attempt's start, end and error)."""
    return operations.job_detail(services.store, operations.parse_torrent_id(torrent_id))


#: The path of the event stream, whose requests do not hold the streams' writes back (see :func:`_requests_first`).
EVENTS_PATH = "/v1/events"


@get(
    EVENTS_PATH,
    tags=["events"],
    summary="Stream runtime events (server-sent events)",
    media_type="text/event-stream",
    response_description="Server-sent events: `id` is the event id, `event` its kind, `data` the event as JSON.",
    operation_id="streamEvents",
    operation_class=EventStreamOperation,
    responses={
        200: ResponseSpec(
            data_container=EventData,
            media_type="text/event-stream",
            description="Server-sent events. Each `data:` is one JSON object: an event whose `payload` has the "
            "schema its `kind` names, or, after `event: resync`, a notice that some events were missed.",
            generate_examples=False,
        ),
        **problems(400, 503),
    },
)
async def events(
    services: NamedDependency[Services],
    last_event_id: Annotated[
        str | None,
        HeaderParameter(
            name="Last-Event-ID",
            description="Resume after this event id (set by EventSource): decimal digits only.",
            schema_extra={**TEXT, "pattern": EVENT_ID_PATTERN},
        ),
    ] = None,
    after: Annotated[
        str | None,
        QueryParameter(
            description="Resume after this event id, for clients that cannot set headers: decimal digits only.",
            schema_extra={**TEXT, "pattern": EVENT_ID_PATTERN},
        ),
    ] = None,
) -> Stream:
    """Events as they happen; ``event: resync`` means some were missed: re-read ``/v1/torrents``."""
    if services.bus is None:
        raise ServiceUnavailableException(
            detail="no live events: this API was started alone (revaer api); events come from the API of revaer run"
        )
    for name, raw in (("Last-Event-ID", last_event_id), ("after", after)):  # each one sent is checked
        if raw is not None and not _EVENT_ID.fullmatch(raw):
            raise InvalidInput(f"{name} {raw!r} is not an event id (decimal digits only, at most 19)")
    resume = int(last_event_id if last_event_id is not None else after or 0)  # the header wins, as EventSource sets it
    hub = services.streams
    assert hub is not None  # there is a hub whenever there is a bus
    try:
        hub.check()
    except TooManyStreams as exc:
        raise ServiceUnavailableException(detail=str(exc), headers={"Retry-After": "5"}) from None
    return Stream(
        event_stream(hub, resume, heartbeat=services.heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@get(
    "/health",
    tags=["operations"],
    summary="Runtime health",
    operation_id="getHealth",
    opt=PUBLIC,
    responses=problems(token=False),
)
async def health_handler(
    services: NamedDependency[Services], request: Request[Any, Any, Any]
) -> HealthReport | Liveness:
    """``ok``, or ``degraded`` with each degraded component and why; always 200 (a degraded runtime still serves).

    Answers within a second whatever the store does: the store is probed in the
    background, and a probe it leaves unanswered is reported as such. Off
    loopback without a token it answers the overall state only (a liveness check).
    """
    report = operations.health_report(services.store, services.health, await services.probe.report())
    if not may_read(request):
        return Liveness(status=report.status, detail="send 'Authorization: Bearer <token>' for the full report")
    return report


@get(
    "/metrics",
    sync_to_thread=True,
    tags=["operations"],
    summary="Prometheus metrics",
    operation_id="getMetrics",
    media_type=PROMETHEUS_TEXT,
    opt=METRICS,
    responses=problems(),
)
def metrics_handler(services: NamedDependency[Services]) -> str:
    """The series of whatever runs here, in the Prometheus text format; FsOps jobs by status come from the store.

    Under ``revaer run`` that is the orchestrator's and its writer's counters
    too; ``revaer api`` alone has only the job gauge (it moves no counter).
    """
    return services.metrics.render()


@head(
    "/health",
    tags=["operations"],
    summary="Runtime liveness, no body",
    operation_id="headHealth",
    opt=PUBLIC,
    responses=problems(token=False),
)
async def health_head() -> Response[None]:
    """200 while the API serves, with no body and without asking the store: a load balancer's cheap probe."""
    return _no_body("application/json")


@head(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics, no body",
    operation_id="headMetrics",
    media_type=PROMETHEUS_TEXT,
    opt=METRICS,
    responses=problems(),
)
async def metrics_head() -> Response[None]:
    """200 when a GET would serve the metrics (same access rule), with no body and without sampling the store."""
    return _no_body(f"{PROMETHEUS_TEXT}; charset=utf-8")


def _no_body(content_type: str) -> Response[None]:
    """A HEAD answer: the GET's content type and an empty body (a JSON ``None`` would render as ``null``)."""
    return Response(content=None, media_type="text/plain", headers={"content-type": content_type})


@post(
    "/v1/fsops/jobs/{torrent_id:str}/retry",
    status_code=200,
    sync_to_thread=True,
    tags=["fsops"],
    summary="Retry a failed FsOps job",
    operation_id="retryJob",
    guards=[require_write_access],
    security=BEARER,
    responses=problems(400, 401, 403, 404, 409, 503),
)
def retry_job(services: NamedDependency[Services], request: Request[Any, Any, Any], torrent_id: TorrentIdPath) -> FsJob:
    """Run a failed job again: at once inside ``revaer run``, else it is left ``pending`` for the next start.

    409 when the job is not failed. Needs ``Authorization: Bearer <token>``.
    """
    parsed = operations.parse_torrent_id(torrent_id)
    if services.controller is not None:
        return services.controller.retry_job(parsed, via=control.via(request))
    return operations.retry_job(services.store, parsed)


# -- the app ----------------------------------------------------------------------------------


def _jobs_sampler(store: RuntimeStore) -> Any:
    def sample() -> list[tuple[dict[str, str], float]]:
        try:
            counts = operations.job_counts(store)
        except RevaerError:
            return []  # already logged by operations; the series is absent while the store is down
        return [({"status": status.value}, float(count)) for status, count in counts.items()]

    return sample


def _version() -> str:
    try:
        return version("revaer-core")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0+unknown"


def create_app(
    store: RuntimeStore,
    *,
    bus: EventBus | None = None,
    health: HealthBoard | None = None,
    metrics: Metrics | None = None,
    catalog: Mapping[UUID, TorrentStatus] | None = None,
    token: str | None = None,
    read_token: str | None = None,
    metrics_public: bool = False,
    bind_host: str = "127.0.0.1",
    heartbeat: float = HEARTBEAT_SECONDS,
    controller: Controller | None = None,
    max_upload_bytes: int = ApiSettings().max_upload_bytes,
    max_event_streams: int = ApiSettings().max_event_streams,
    ref_prefixes: bool | None = None,
) -> Litestar:
    """The API app over ``store``; ``revaer run`` also passes its live bus, board, metrics and catalog.

    :param bind_host: the address the server will listen on. Off loopback a
        ``token`` is required (ConfigError otherwise), and every endpoint but the
        liveness answer of ``/health`` needs a token; on loopback reads are open,
        and only loopback Host headers are answered.
    :param heartbeat: seconds between keep-alive comments on an idle event stream.
    :param token: the bearer token every write needs (``None``: writes are refused).
    :param read_token: a bearer token that reads only; a write with it gets 403.
    :param metrics_public: off loopback, serve ``/metrics`` without a token.
    :param controller: the daemon's control operations (``revaer run``); without it the
        control routes answer 503 and a job retry waits for the daemon's next start.
    :param max_upload_bytes: the largest request body taken (a .torrent upload).
    :param max_event_streams: event streams served at once; more get a 503 with ``Retry-After``.
    :param ref_prefixes: whether a torrent may be named by a prefix of its id or info-hash, as the
        document then says; by default when there is a ``controller`` (it resolves them), and UUIDs only else.
    """
    check_exposure(bind_host, token)
    loopback = is_loopback(bind_host)
    incidents.serving()
    access = ApiAccess(token=token, read_token=read_token, loopback=loopback, metrics_public=metrics_public)
    metrics = metrics if metrics is not None else Metrics()
    metrics.register_sampled("revaer_fsops_jobs", "FsOps jobs in the store, by status.", _jobs_sampler(store))
    probe = StoreProbe(lambda: operations.store_health(store))
    services = Services(
        store=store,
        probe=probe,
        bus=bus,
        health=health,
        metrics=metrics,
        catalog=catalog,
        heartbeat=heartbeat,
        controller=controller,
        max_upload_bytes=max_upload_bytes,
        streams=None if bus is None else StreamHub(bus, max_event_streams),
    )
    routes = [
        list_torrents,
        show_torrent,
        list_jobs,
        show_job,
        retry_job,
        events,
        health_handler,
        health_head,
        metrics_handler,
        metrics_head,
        *control.ROUTES,
    ]
    return Litestar(
        route_handlers=[*options_routes(routes), *routes],
        request_max_body_size=max_upload_bytes + 64 * 1024,  # room for a multipart envelope; the add checks exactly
        state=State({ACCESS_STATE: access, STREAMS_STATE: services.streams}),
        guards=[require_read_access],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        plugins=[TorrentRefSchema(prefixes=controller is not None if ref_prefixes is None else ref_prefixes)],
        response_class=ShapedResponse,
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=_check_loopback_request if loopback else _check_ref,
        middleware=[] if services.streams is None else [_requests_first(services.streams)],
        openapi_config=OpenAPIConfig(
            title="Revaer API",
            version=_version(),
            description="Torrent and FsOps state from Revaer's runtime store, health, metrics and live events.",
            path=OPENAPI_PATH,
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
        ),
        on_startup=[probe.start],
        on_shutdown=[probe.close],
        debug=False,
        logging_config=None,  # the process owns logging (and its redaction filter), not the app
    )
