"""Store failures as operators see them: the store's own words go to the log, the answer names the log line.

A driver's message can hold the SQL statement, its parameters or a server's
internals. None of it belongs in a problem document or a CLI line; the
operator gets an incident id instead, and the log line that starts with it.
"""

from __future__ import annotations

import logging
import secrets

from revaer_core.errors import StoreUnavailable
from revaer_core.redact import redact

log = logging.getLogger(__name__)


def quiet_incidents(debug: bool) -> None:
    """In a CLI command, print incident log lines only with ``--debug``: its error line names the incident.

    A server (``revaer run``, ``revaer api``) calls :func:`serving`, and logs every incident.
    """
    log.setLevel(logging.NOTSET if debug else logging.ERROR)


def serving() -> None:
    """Log every incident: this process serves the API, and its log is where an operator looks."""
    log.setLevel(logging.NOTSET)


class StoreIncident(StoreUnavailable):
    """A store failure logged under :attr:`incident`; its message says what failed and which log line tells why."""

    def __init__(self, what: str, incident: str) -> None:
        super().__init__(
            f"runtime store failed to {what} (incident {incident}: the log line 'incident {incident}' has the "
            "store's error; a CLI command prints it with --debug); check 'revaer runtime status' and try again"
        )
        self.what = what
        self.incident = incident


def new_id() -> str:
    """A short id, unique enough to find one log line among a day's."""
    return secrets.token_hex(6)


def record(what: str, exc: BaseException) -> StoreIncident:
    """Log ``exc`` (redacted, on one line) under a new incident id, and return the error to raise instead."""
    incident = new_id()
    text = " | ".join(line.strip() for line in f"{type(exc).__name__}: {exc}".splitlines() if line.strip())
    log.warning("incident %s: runtime store failed to %s: %s", incident, what, redact(text))
    return StoreIncident(what, incident)
