"""The API's control routes: add, remove, pause, resume, recheck, reannounce, change options and files.

Served by the API inside ``revaer run`` (which hands the app its
:class:`~revaer_core.control.controller.Controller`); a stand-alone ``revaer
api`` lists them too and answers 503, naming ``revaer run``. Every route here
changes something, so every one needs the bearer token.

An add takes one of three bodies:

- ``application/x-bittorrent``: the .torrent file itself, options in the query string;
- ``multipart/form-data``: the .torrent in the field ``torrent``, options as form fields;
- ``application/json``: ``{"magnet": "magnet:?xt=..."}`` or ``{"metainfo": "<base64>"}``, with options;
  with metainfo, ``resume_data`` (base64 libtorrent resume data, as ``revaer import`` sends) spares a recheck.

Options have the same names everywhere: ``paused``, ``sequential``,
``save_path``, ``labels`` (``label`` repeated in a query or form),
``skip_files`` (``skip_file``), ``file_priorities`` (``priority=N=P``),
``download_limit`` and ``upload_limit`` (bytes/s, 0 for none).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import attrs
import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import QueryParameter

from revaer_core.api.bodies import AddTorrentJson, FilesJson, OptionsJson, add_operation, decode, json_operation
from revaer_core.api.models import CLI_AGENT
from revaer_core.api.services import (
    BEARER,
    Services,
    ShapedResponse,
    TorrentRefPath,
    blocking,
    problems,
    require_write_access,
)
from revaer_core.control.controller import Controller
from revaer_core.control.metainfo import TorrentInfo, read_magnet, read_metainfo
from revaer_core.control.requests import AddRequest, OptionsChange, add_request, labels_of, rate_of
from revaer_core.errors import InvalidInput, TooLarge
from revaer_core.sources import AddedVia
from revaer_core.status import FileEntry, TorrentStatus

BITTORRENT = "application/x-bittorrent"


@attrs.frozen
class TorrentFiles:
    """A torrent's files with their priorities; ``files`` is null until a magnet's metadata arrives."""

    torrent_id: str
    files: tuple[FileEntry, ...] | None


def _controller(services: Services) -> Controller:
    if services.controller is None:
        raise ServiceUnavailableException(
            detail="no daemon behind this API (revaer api serves the store only); start 'revaer run' to act on torrents"
        )
    controller: Controller = services.controller
    return controller


def via(request: Request[Any, Any, Any]) -> AddedVia:
    return AddedVia.CLI if request.headers.get("user-agent", "").startswith(CLI_AGENT) else AddedVia.API


def _int(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(f"{name}: {text[:40]!r} is not a whole number") from None


def _bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise InvalidInput(f"{name}: {text[:40]!r} is not true or false")


def _index_map(name: str, pairs: Mapping[str, int]) -> dict[int, int]:
    return {_int(f"{name} index", k): v for k, v in pairs.items()}


def _priority_pairs(values: Sequence[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for value in values:
        index, sep, priority = value.partition("=")
        if not sep:
            raise InvalidInput(f"priority: {value[:40]!r} is not INDEX=PRIORITY, e.g. 2=7")
        out[_int("priority index", index)] = _int("priority", priority)
    return out


def _json_options(body: AddTorrentJson) -> dict[str, Any]:
    return {
        "paused": body.paused,
        "sequential": body.sequential,
        "save_path": body.save_path,
        "labels": body.labels,
        "skip": body.skip_files,
        "priorities": _index_map("file_priorities", body.file_priorities),
        "download_limit": body.download_limit,
        "upload_limit": body.upload_limit,
    }


def _pair_options(first: Callable[[str], str | None], every: Callable[[str], list[str]]) -> dict[str, Any]:
    """Options from a query string or form fields (text values, repeated keys)."""
    limits = {key: first(key) for key in ("download_limit", "upload_limit")}
    return {
        "paused": _bool("paused", first("paused") or ""),
        "sequential": _bool("sequential", first("sequential") or ""),
        "save_path": first("save_path"),
        "labels": every("label"),
        "skip": [_int("skip_file", v) for v in every("skip_file")],
        "priorities": _priority_pairs(every("priority")),
        **{key: None if value is None else _int(key, value) for key, value in limits.items()},
    }


def _request(controller: Controller, info: TorrentInfo, options: Mapping[str, Any]) -> AddRequest:
    return add_request(info, controller.settings.engine, **options)


def _base64(field: str, text: str | None) -> bytes:
    try:
        return base64.b64decode(text or "", validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII character (which b64decode refuses with a bare ValueError)
        raise InvalidInput(f"JSON add: '{field}' is not valid base64") from None


async def _parse_add(request: Request[Any, Any, Any], limit: int) -> tuple[TorrentInfo, dict[str, Any]]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"the upload is {int(declared)} bytes; the most accepted is {limit} (see [api] max_upload_bytes)"
        )
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("torrent")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart add: put the .torrent file in the form field 'torrent'")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"the .torrent is over {limit} bytes, the most accepted (see [api] max_upload_bytes)")

        def every(key: str) -> list[str]:
            return [v for v in form.getall(key, []) if isinstance(v, str)]

        def first(key: str) -> str | None:
            values = every(key)
            return values[0] if values else None

        return read_metainfo(data), _pair_options(first, every)
    body = await request.body()
    if len(body) > limit:
        raise TooLarge(f"the request body is over {limit} bytes, the most accepted (see [api] max_upload_bytes)")
    if kind == BITTORRENT:
        query = request.query_params
        return read_metainfo(body), _pair_options(query.get, lambda key: list(query.getall(key, [])))
    if kind == "application/json":
        parsed = decode(body, AddTorrentJson)
        if (parsed.magnet is None) == (parsed.metainfo is None):
            raise InvalidInput("JSON add: give exactly one of 'magnet' or 'metainfo' (base64)")
        if parsed.magnet is not None:
            if parsed.resume_data is not None:
                raise InvalidInput("JSON add: 'resume_data' comes with 'metainfo', not with a magnet link")
            return read_magnet(parsed.magnet), _json_options(parsed)
        data, resume = _base64("metainfo", parsed.metainfo), None
        if parsed.resume_data is not None:
            resume = _base64("resume_data", parsed.resume_data)
        return read_metainfo(data), {**_json_options(parsed), "resume_data": resume}
    raise InvalidInput(
        f"cannot add from a {kind or 'body without a content type'}: send {BITTORRENT}, "
        "multipart/form-data (field 'torrent') or application/json (magnet or base64 metainfo)"
    )


#: Every route here writes: the bearer token guards it.
GUARDS = [require_write_access]
TAGS = ["torrents"]


@post(
    "/v1/torrents",
    summary="Add a torrent",
    operation_id="addTorrent",
    operation_class=add_operation(),
    status_code=201,
    response_description="The torrent: 201 with Location when new, 200 when it was there already.",
    description="The body is at most `[api] max_upload_bytes` (10 MiB by default; 413 past it): "
    "a .torrent as `application/x-bittorrent` or as the `torrent` part of `multipart/form-data`, "
    "or JSON with a magnet link or base64 metainfo.",
    responses=problems(400, 401, 403, 409, 413, 422, 503),
    guards=GUARDS,
    security=BEARER,
    tags=TAGS,
)
async def add_torrent(services: NamedDependency[Services], request: Request[Any, Any, Any]) -> Response[TorrentStatus]:
    """Add a .torrent (as ``application/x-bittorrent`` or multipart) or a magnet or base64 metainfo (JSON).

    Acknowledged once the torrent, its source and the choices it was added
    with are in the store: a crash right after the answer loses nothing.
    """
    controller = _controller(services)
    info, options = await _parse_add(request, services.max_upload_bytes)
    add = _request(controller, info, options)
    added = await blocking(lambda: controller.add(add, via(request)))
    headers = {"Location": f"/v1/torrents/{added.status.id}"} if added.created else {}
    return ShapedResponse(added.status, status_code=201 if added.created else 200, headers=headers)


@delete(
    "/v1/torrents/{torrent_id:str}",
    summary="Remove a torrent",
    operation_id="removeTorrent",
    status_code=200,
    responses=problems(400, 401, 403, 404, 409, 503),
    guards=GUARDS,
    security=BEARER,
    tags=TAGS,
)
async def remove_torrent(
    services: NamedDependency[Services],
    request: Request[Any, Any, Any],
    torrent_id: TorrentRefPath,
    with_data: Annotated[bool, QueryParameter(description="Delete the downloaded files too.")] = False,
) -> TorrentStatus:
    """Remove the torrent from the store and the engine; ``with_data`` deletes its files. Returns its last status."""
    controller = _controller(services)
    return await blocking(lambda: controller.remove(torrent_id, with_data=with_data, via=via(request)))


def _action(name: str, summary: str, operation: str) -> Any:
    """The route of one action on a torrent (pause, resume, recheck, reannounce): the same shape for each."""

    def handler(
        services: NamedDependency[Services], request: Request[Any, Any, Any], torrent_id: TorrentRefPath
    ) -> TorrentStatus:
        controller = _controller(services)
        act: Callable[..., TorrentStatus] = getattr(controller, name)
        return act(torrent_id, via=via(request))

    handler.__name__ = f"{name}_torrent"
    return post(
        f"/v1/torrents/{{torrent_id:str}}/{name}",
        summary=summary,
        description=f"{summary}; returns the torrent's status.",
        operation_id=operation,
        status_code=200,
        sync_to_thread=True,
        responses=problems(400, 401, 403, 404, 409, 503),
        guards=GUARDS,
        security=BEARER,
        tags=TAGS,
    )(handler)


pause_torrent = _action("pause", "Pause a torrent (it stays paused across restarts)", "pauseTorrent")
resume_torrent = _action("resume", "Resume a paused or failed torrent", "resumeTorrent")
recheck_torrent = _action("recheck", "Check the torrent's files on disk again", "recheckTorrent")
reannounce_torrent = _action("reannounce", "Announce to the torrent's trackers now", "reannounceTorrent")


def _choices_patch(path: str, body: type[Any], *, summary: str, operation_id: str) -> patch:
    """A PATCH route that changes a torrent's choices from a JSON ``body``: the guards and problems each shares."""
    return patch(
        path,
        summary=summary,
        operation_id=operation_id,
        operation_class=json_operation(body),
        responses=problems(400, 401, 403, 404, 409, 422, 503),
        guards=GUARDS,
        security=BEARER,
        tags=TAGS,
    )


@_choices_patch(
    "/v1/torrents/{torrent_id:str}", OptionsJson, summary="Change a torrent's options", operation_id="setTorrentOptions"
)
async def set_options(
    services: NamedDependency[Services],
    request: Request[Any, Any, Any],
    torrent_id: TorrentRefPath,
) -> TorrentStatus:
    """Change sequential mode, the rate limits (0 or null lifts one) or the labels (replaced whole)."""
    data = decode(await request.body(), OptionsJson)
    download = None if isinstance(data.download_limit, msgspec.UnsetType) else data.download_limit
    upload = None if isinstance(data.upload_limit, msgspec.UnsetType) else data.upload_limit
    change = OptionsChange(
        sequential=data.sequential,
        download_limit=rate_of("download_limit", download),
        upload_limit=rate_of("upload_limit", upload),
        clear_download_limit=not isinstance(data.download_limit, msgspec.UnsetType) and not data.download_limit,
        clear_upload_limit=not isinstance(data.upload_limit, msgspec.UnsetType) and not data.upload_limit,
        labels=None if data.labels is None else labels_of(data.labels),
    )
    controller = _controller(services)
    return await blocking(lambda: controller.set_options(torrent_id, change, via=via(request)))


@get(
    "/v1/torrents/{torrent_id:str}/files",
    summary="List a torrent's files",
    operation_id="getTorrentFiles",
    sync_to_thread=True,
    tags=TAGS,
    responses=problems(400, 404, 409, 503),
)
def torrent_files(services: NamedDependency[Services], torrent_id: TorrentRefPath) -> TorrentFiles:
    """Each file with its index, size, progress and priority (0 is skipped)."""
    status = services.lookup(torrent_id)
    return TorrentFiles(torrent_id=str(status.id), files=status.files)


@_choices_patch(
    "/v1/torrents/{torrent_id:str}/files", FilesJson, summary="Set file priorities", operation_id="setTorrentFiles"
)
async def set_files(
    services: NamedDependency[Services],
    request: Request[Any, Any, Any],
    torrent_id: TorrentRefPath,
) -> TorrentStatus:
    """Skip files (priority 0) or set priorities 1..7 by file index; the others stay as they are."""
    data = decode(await request.body(), FilesJson)
    controller = _controller(services)
    priorities = _index_map("priorities", data.priorities)
    return await blocking(
        lambda: controller.set_files(torrent_id, skip=tuple(data.skip), priorities=priorities, via=via(request))
    )


ROUTES = [
    add_torrent,
    remove_torrent,
    pause_torrent,
    resume_torrent,
    recheck_torrent,
    reannounce_torrent,
    set_options,
    torrent_files,
    set_files,
]
