"""The shapes the HTTP API returns and the CLI prints with ``--json``.

One set of attrs classes, serialised by :func:`revaer_core.serialize.to_json` in
both places, so a script can switch between ``revaer ... --json`` and the API
without changing its parser. Litestar reads the same classes to write the
OpenAPI document.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from revaer_core.health import StoreHealth
from revaer_core.jobs import FsJob, JobHistoryEntry
from revaer_core.redact import redact
from revaer_core.serialize import JsonShape
from revaer_core.status import TorrentStatus

#: ``User-Agent`` prefix of the ``revaer`` CLI: the daemon reports its actions as ``via: cli``.
CLI_AGENT = "revaer-cli/"


_PUBLIC = JsonShape(text=redact)


def public_json(value: Any) -> Any:
    """``value`` as JSON-ready data on its way out of the process: :func:`to_json` with every string redacted.

    Redacting values rather than the encoded text keeps the JSON valid whatever
    a secret is followed by (``password=x"`` must not eat the closing quote).
    """
    return _PUBLIC(value)


@attrs.frozen
class TorrentPage:
    """One page of torrents; pass ``next_cursor`` back as ``cursor`` for the next (``null`` on the last)."""

    items: tuple[TorrentStatus, ...]
    next_cursor: str | None = None


@attrs.frozen
class JobPage:
    """One page of FsOps jobs, oldest first; ``next_cursor`` as in :class:`TorrentPage`."""

    items: tuple[FsJob, ...]
    next_cursor: str | None = None


@attrs.frozen
class JobDetail:
    """A torrent's FsOps job and every transition it went through, oldest first."""

    job: FsJob
    history: tuple[JobHistoryEntry, ...]


class HealthStatus(enum.StrEnum):
    """The runtime's overall state: degraded while any component is, failed while one cannot go on."""

    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"  #: the daemon is stopping on a fault, or its store writes are fenced


@attrs.frozen
class HealthReport:
    """What ``GET /health`` answers: overall state, the degraded components and why, and the store's own report."""

    status: HealthStatus
    backend: str  #: the selected store backend, ``none`` when persistence is off
    degraded: Mapping[str, str]  #: component -> reason, empty when ``status`` is ``ok``
    store: StoreHealth


@attrs.frozen
class Liveness:
    """What ``GET /health`` answers off loopback without a token: the overall state, nothing about the runtime."""

    status: HealthStatus
    #: why there is no more: required, so that this shape and :class:`HealthReport` never both match
    detail: str


@attrs.frozen
class Problem:
    """An RFC 9457 problem document (``application/problem+json``): every API error has this shape."""

    type: str  #: a URN naming the kind of problem, e.g. ``urn:revaer:problem:not-found``
    title: str  #: the HTTP status phrase
    status: int
    detail: str  #: one line saying what is wrong and how to fix it
    instance: str | None = None  #: the request path the problem is about
    #: for a store or server failure: the id of the server's log line that has the details
    incident: str | None = None
