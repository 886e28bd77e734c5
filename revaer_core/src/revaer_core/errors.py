"""Errors that reach a user: each message is one line saying what is wrong and how to fix it."""

from __future__ import annotations


class RevaerError(Exception):
    """Base of every error Revaer reports to a person; ``exit_code`` is what the CLI exits with."""

    exit_code = 3


class ConfigError(RevaerError):
    """A setting is missing, unknown or of the wrong type; the message names its key."""

    exit_code = 2

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


class InvalidInput(RevaerError):
    """An argument a caller passed (an id, a filter) cannot be used."""

    exit_code = 2


class PluginError(RevaerError):
    """The selected runtime plugin is not installed or does not load."""


class StoreUnavailable(RevaerError):
    """The store cannot be reached now; the write may be retried later.

    Backends raise this (or let a driver error through) for faults that pass;
    the orchestrator and FsOps keep the write and retry it.
    """


#: The ``store_health`` fact that says whether this daemon holds the writer lock ("held", "lost" or
#: :data:`HELD_ELSEWHERE`): after a :class:`WriterFenced`, the daemon stops only on :data:`HELD_ELSEWHERE`.
WRITER_LOCK_FACT = "writer lock"
HELD_ELSEWHERE = "held by another daemon"


class WriterFenced(StoreUnavailable):
    """This daemon no longer holds the store's writer role, so the write was refused and nothing of it landed.

    A backend with a writer lock raises it from a write hook (in the transaction
    that would have written) once another process took the lock, or the lock
    went with its connection. Callers keep the write, as for any
    :class:`StoreUnavailable`; the daemon also stops writing, reports health
    ``failed`` and calls ``store_health``, which tries to take the role back.
    ``holder`` names who has it now, when the backend knows.
    """

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


# -- what a control operation or a lookup refuses; each maps to one HTTP status (CLI exit 2) ------------


class NotFound(InvalidInput):
    """No torrent or job has the id the caller gave (HTTP 404)."""


class Conflict(InvalidInput):
    """The request is fine but clashes with the current state, or an id prefix is ambiguous (HTTP 409)."""


class RetryRefused(Conflict):
    """The job exists but its status does not allow a retry (only a failed job can be retried)."""


class TooLarge(InvalidInput):
    """An upload bigger than ``[api] max_upload_bytes`` (HTTP 413)."""


class Refused(InvalidInput):
    """Well-formed input whose value cannot be used: a save path outside the allowed roots,
    a file index out of range, a negative limit (HTTP 422)."""
