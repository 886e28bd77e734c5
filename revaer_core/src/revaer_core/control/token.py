"""The API token: every write to the daemon needs it, on loopback too.

The daemon makes one on its first start and keeps it in its data dir, readable
by its user only; the CLI of the same user on the same machine reads it from
there. ``[api] token`` or ``REVAER_API_TOKEN`` replace it.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

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
    """The token the CLI sends: the configured one, else the data dir's, if this user can read it."""
    if settings.api.token is not None:
        return settings.api.token
    return _read(token_path(settings))


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the API token at %s: %s", path, exc)
        return None
    return text or None
