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
