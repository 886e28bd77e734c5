"""The API tokens: every write to the daemon needs the token, on loopback too; off loopback, every read a token.

The daemon makes its token on its first start and keeps it in its data dir,
readable by its user only; the CLI of the same user on the same machine reads
it from there. ``[api] token`` or ``REVAER_API_TOKEN`` replace it. A second,
read-only token (``[api] read_token`` or ``REVAER_API_READ_TOKEN``) lets a
dashboard or a scraper read off loopback without being able to change anything.
"""

from __future__ import annotations

import enum
import hmac
import logging
import os
import secrets
from pathlib import Path

import attrs

from revaer_core.errors import RevaerError
from revaer_core.settings import Settings

log = logging.getLogger(__name__)

TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a token


def token_path(settings: Settings) -> Path:
    return settings.runtime.data_dir / TOKEN_FILE


def daemon_token(settings: Settings) -> str:
    """The token the daemon's API asks for: the configured one, else the data dir's, made on first use."""
    if settings.api.token is not None:
        return settings.api.token
    path = token_path(settings)
    existing = _read(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _read(path) or token
    except OSError as exc:
        raise RevaerError(f"cannot write the API token to {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    log.info("API token written to %s (mode 0600); the CLI reads it from there", path)
    return token


def client_token(settings: Settings) -> str | None:
    """The token the CLI sends: the configured one, else the data dir's (if readable), else the read-only one."""
    if settings.api.token is not None:
        return settings.api.token
    return _read(token_path(settings)) or settings.api.read_token


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the API token at %s: %s", path, exc)
        return None
    return text or None


class Access(enum.IntEnum):
    """What a request may do, from the token it presents."""

    NONE = 0
    READ = 1  #: the read-only token (``[api] read_token``)
    WRITE = 2  #: the token (``[api] token``, or the data dir's)


@attrs.frozen
class ApiAccess:
    """Who may read and who may write, for one API.

    On loopback reads are open and writes need the token. Off loopback every
    endpoint needs a token (the read-only one is enough to read), except the
    liveness answer of ``/health`` and, when ``metrics_public``, ``/metrics``.
    """

    token: str | None = attrs.field(repr=False)
    read_token: str | None = attrs.field(default=None, repr=False)
    loopback: bool = True
    metrics_public: bool = False

    def grant(self, authorization: str) -> Access:
        """What an ``Authorization`` header allows; tokens compared in constant time."""
        scheme, _sep, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return Access.NONE
        presented = given.strip().encode()
        if self.token is not None and hmac.compare_digest(presented, self.token.encode()):
            return Access.WRITE
        if self.read_token is not None and hmac.compare_digest(presented, self.read_token.encode()):
            return Access.READ
        return Access.NONE

    def may_read(self, authorization: str) -> bool:
        """Whether a request with this header may read (everything on loopback)."""
        return self.loopback or self.grant(authorization) >= Access.READ
