"""Errors the PostgreSQL store reports to a person: one line each, saying what fixes it."""

from __future__ import annotations

from revaer_core import RevaerError


class SchemaNotReady(RevaerError):
    """The schema is missing, behind the installed code, or ahead of it; the message names the fix."""


class DaemonAlreadyRunning(RevaerError):
    """Another daemon holds the schema's writer lock."""
