"""Revaer's core: the torrent runtime and the hook specs its runtime-store plugins implement.

A plugin author needs only what this package exports::

    from revaer_core import hookimpl, TorrentStatus, FsJob, Page, StoreHealth

Both of Revaer's own plugins import nothing else of it (a test checks).
"""

from revaer_core.errors import (
    HELD_ELSEWHERE,
    WRITER_LOCK_FACT,
    ConfigError,
    InvalidInput,
    PluginError,
    RevaerError,
    StoreUnavailable,
    WriterFenced,
)
from revaer_core.hookspecs import hookimpl
from revaer_core.jobs import (
    FsJob,
    JobEvent,
    JobHistoryEntry,
    JobStatus,
    JobTransition,
    TransferMode,
    TransitionRefused,
    apply_transition,
    history_entry,
)
from revaer_core.lifecycle import StartedInWith
from revaer_core.query import (
    Cursor,
    InvalidQuery,
    JobQuery,
    Page,
    TorrentQuery,
    TorrentSort,
    page_of,
    select_jobs,
    select_torrents,
)
from revaer_core.redact import redact
from revaer_core.serialize import from_json, to_json
from revaer_core.settings import build as parse_table
from revaer_core.sources import DEFAULT_PRIORITY, AddedVia, StoredSource
from revaer_core.status import MAX_BYTES, FileEntry, Progress, Rates, TorrentState, TorrentStatus
from revaer_core.store import RuntimeStore
from revaer_core.storetypes import Capability, StoreHealth, StoreRole

__all__ = [
    "DEFAULT_PRIORITY",
    "HELD_ELSEWHERE",
    "MAX_BYTES",
    "WRITER_LOCK_FACT",
    "AddedVia",
    "Capability",
    "ConfigError",
    "Cursor",
    "FileEntry",
    "FsJob",
    "InvalidInput",
    "InvalidQuery",
    "JobEvent",
    "JobHistoryEntry",
    "JobQuery",
    "JobStatus",
    "JobTransition",
    "Page",
    "PluginError",
    "Progress",
    "Rates",
    "RevaerError",
    "RuntimeStore",
    "StartedInWith",
    "StoreHealth",
    "StoreRole",
    "StoreUnavailable",
    "StoredSource",
    "TorrentQuery",
    "TorrentSort",
    "TorrentState",
    "TorrentStatus",
    "TransferMode",
    "TransitionRefused",
    "WriterFenced",
    "apply_transition",
    "from_json",
    "history_entry",
    "hookimpl",
    "page_of",
    "parse_table",
    "redact",
    "select_jobs",
    "select_torrents",
    "to_json",
]
