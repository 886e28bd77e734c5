"""The CLI's side of the daemon's HTTP API: one request, its answer, and the error it means.

Control commands (add, remove, pause, ...) change a running daemon, so they go
through its API rather than the store: the daemon owns the engine and the
catalog. This module uses the standard library only, so the CLI works without
the ``api`` extra; and ``http.client`` rather than ``urllib.request``, so a
``http_proxy`` in the environment never carries the token to a proxy on its
way to 127.0.0.1.

Every problem document the daemon answers becomes the error of
:mod:`revaer_core.errors` it was made from (404 :class:`NotFound`, 422
:class:`Refused`, ...), its ``detail`` the message, so the CLI exits as it would
had it run the operation itself.
"""

from __future__ import annotations

import contextlib
import http
import http.client
import ipaddress
import json
import socket
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote, urlencode

import attrs

from revaer_core.api.models import CLI_AGENT
from revaer_core.control.refs import resolve
from revaer_core.control.token import client_token, token_path
from revaer_core.errors import Conflict, InvalidInput, NotFound, Refused, RevaerError, StoreUnavailable, TooLarge
from revaer_core.settings import Settings

#: Seconds a read may take; a read answers from memory.
READ_TIMEOUT_S = 10.0
#: Seconds a write may take: the daemon answers once the store confirms, which it waits 10 s for.
WRITE_TIMEOUT_S = 30.0
#: Seconds to wait for the connection itself: a daemon on this machine accepts at once.
CONNECT_TIMEOUT_S = 5.0

_ERRORS: dict[int, type[InvalidInput]] = {
    400: InvalidInput,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: Refused,
}


class DaemonUnreachable(RevaerError):
    """No daemon accepted the connection: nothing was sent, so a command may fall back to the store."""

    exit_code = 3


class DaemonFailed(RevaerError):
    """The daemon took the request but its answer did not come, or made no sense (exit 3)."""

    exit_code = 3


class AccessRefused(RevaerError):
    """The daemon refused this client: its token (or the lack of one), or the address it was reached by.

    A setting the user can fix, so exit 2; not an :class:`InvalidInput`, since it refuses every
    request alike and a command stops at the first.
    """

    exit_code = 2


@attrs.frozen
class Answer:
    """A successful answer: its HTTP status (201 for a new torrent, 200 for one already there) and its JSON."""

    status: int
    body: Any


def _version() -> str:
    try:
        return version("revaer-core")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0+unknown"


def connect_host(host: str) -> str:
    """Where to reach an API listening on ``host``: a wildcard (``0.0.0.0``, ``::``) means this machine's loopback."""
    name = host.strip().strip("[]")
    if not name:
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name  # a host name: connect to it as given
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return name


class DaemonClient:
    """Requests to the daemon's API at ``host:port`` with the bearer token and the CLI's ``User-Agent``.

    Nothing is contacted until :meth:`request`; a client is cheap to make.
    """

    def __init__(self, host: str, port: int, token: str | None, *, token_source: str) -> None:
        self.host = connect_host(host)
        self.port = port
        self._token = token
        self._token_source = token_source  #: where the token was looked for, for the message when it is refused
        self.agent = CLI_AGENT + _version()

    @classmethod
    def from_settings(cls, settings: Settings) -> DaemonClient:
        """The client of the daemon these settings describe: ``[api]`` host and port, and its token."""
        if settings.api.token is not None:
            source = "[api] token / REVAER_API_TOKEN"
        else:
            source = f"{token_path(settings)} (the daemon's data dir)"
        return cls(settings.api.host, settings.api.port, client_token(settings), token_source=source)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @staticmethod
    def torrent_path(ref: str, *rest: str) -> str:
        """``/v1/torrents/<ref>[/rest...]``: the daemon resolves the reference (a UUID or a prefix).

        The reference is checked here first, by the rule the daemon applies, so a
        malformed one (empty, or with a slash) is refused in the daemon's words
        instead of missing every route.

        :raises InvalidInput: ``ref`` cannot name a torrent.
        """
        with contextlib.suppress(NotFound):  # well formed: which torrent it names is the daemon's to say
            resolve(ref, ())
        return "/".join(["/v1/torrents", quote(ref.strip(), safe=""), *rest])

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Answer:
        """Send one request and return its answer; any other status raises the error it stands for.

        A GET gets :data:`READ_TIMEOUT_S`, every other method :data:`WRITE_TIMEOUT_S`.

        :raises DaemonUnreachable: no daemon accepted the connection (nothing was sent).
        :raises DaemonFailed: the answer did not come in time, the connection broke, or it was not JSON.
        """
        headers = {"User-Agent": self.agent, "Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        target = path + (f"?{urlencode(list(query))}" if query else "")
        timeout = READ_TIMEOUT_S if method == "GET" else WRITE_TIMEOUT_S
        connection = http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_S)
        try:
            try:
                connection.connect()
            except (OSError, http.client.HTTPException) as exc:
                raise DaemonUnreachable(
                    f"no Revaer daemon answers at {self.url} ({_reason(exc)}); start one with 'revaer run'"
                ) from None
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except TimeoutError:
                raise DaemonFailed(
                    f"the Revaer daemon at {self.url} did not answer within {timeout:.0f} s; "
                    "see its log, and 'revaer runtime status' for the store"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise DaemonFailed(f"the connection to the Revaer daemon at {self.url} broke: {_reason(exc)}") from None
        finally:
            connection.close()
        return self._answer(response.status, response.getheader("Content-Type", ""), data)

    def _answer(self, status: int, content_type: str, data: bytes) -> Answer:
        parsed = _json(data) if "json" in content_type.lower() else None
        if 200 <= status < 300:
            if parsed is None and data:
                raise DaemonFailed(f"the server at {self.url} did not answer with JSON; is it a Revaer daemon?")
            return Answer(status, parsed)
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        if not isinstance(detail, str) or not detail:
            detail = (
                f"{self.url} answered {status} {_phrase(status)} without a problem document; is it a Revaer daemon?"
            )
        if status == 401:
            raise AccessRefused(self._token_message())
        if status in _ERRORS:
            raise _ERRORS[status](detail)
        if status == 403:  # a Host header it does not serve: [api] host names the wrong address
            raise AccessRefused(f"the daemon at {self.url} refused the request: {detail}")
        if status == 503:
            raise StoreUnavailable(detail)
        raise DaemonFailed(f"the daemon at {self.url} answered {status} {_phrase(status)}: {detail}")

    def _token_message(self) -> str:
        where = (
            "the daemon keeps its token in its data dir (file api-token, made on its first start); "
            "[api] token or REVAER_API_TOKEN replace it"
        )
        if self._token is None:
            return (
                f"the daemon at {self.url} wants an API token and none was found at {self._token_source}: {where}; "
                "run the CLI as the daemon's user with the daemon's settings"
            )
        return f"the daemon at {self.url} refused the API token from {self._token_source}: {where}"


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "(unknown status)"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no connection within {CONNECT_TIMEOUT_S:.0f} s"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
