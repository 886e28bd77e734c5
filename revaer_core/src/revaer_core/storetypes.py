"""What a store says about itself: the role it is opened in, its health and its optional abilities.

These live beside the hook specs, which take and return them, and apart from
the runtime's health board, so that the plugin contract needs nothing of the
event bus.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs


class StoreRole(enum.StrEnum):
    """Why a process opens the store."""

    #: ``revaer run``: the process whose orchestrator and FsOps write all the time (it takes any exclusive lock)
    DAEMON = "daemon"
    #: the CLI and a stand-alone API: they read, and write through operator commands (``revaer fsops retry``)
    CLIENT = "client"


class Capability(enum.StrEnum):
    """Optional abilities a backend declares through ``store_capabilities``."""

    DURABLE = "durable"  #: data survives closing and reopening the store
    RESUME_DATA = "resume_data"  #: implements ``save_resume_data`` / ``load_resume_data``
    SOURCES = "sources"  #: implements ``save_torrent_sources`` / ``load_torrent_sources``
    #: several processes (a daemon and CLI clients) may open the same storage at once and write to it
    SHARED = "shared"


@attrs.frozen
class StoreHealth:
    """Whether a store can serve now, in one line, with facts for an operator."""

    ok: bool
    detail: str
    facts: Mapping[str, str] = attrs.field(factory=dict)
