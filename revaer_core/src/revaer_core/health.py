"""What a store says about itself: its role, health and optional abilities."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs


class StoreRole(enum.StrEnum):
    """Why a process opens the store."""

    DAEMON = "daemon"  #: the one writer: ``revaer run``
    CLIENT = "client"  #: the CLI and a stand-alone API: read and run operator commands


class Capability(enum.StrEnum):
    """Optional abilities a backend declares through ``store_capabilities``."""

    DURABLE = "durable"  #: data survives closing and reopening the store
    RESUME_DATA = "resume_data"  #: implements ``save_resume_data`` / ``load_resume_data``


@attrs.frozen
class StoreHealth:
    """Whether a store can serve now, in one line, with facts for an operator."""

    ok: bool
    detail: str
    facts: Mapping[str, str] = attrs.field(factory=dict)
