"""An append-only JSON-lines log of every event and every store write, for crash and outage tests.

``python -m revaer_core.testing run --event-log PATH`` writes one line per
event the engine and FsOps publish (after the orchestrator folded it) and one
line per flush the writer reports as committed: it is the daemon's
:class:`~revaer_core.daemon.DaemonObserver`. A test that kills the daemon compares the store
against this log, never against the daemon's own view. Each line is handed
to the OS as it is written, so a SIGKILL loses at most the line being written.

Lines: ``{"k": "event", "t": wall time, "id": n, "type": "ProgressUpdated",
"torrent": uuid, ...fields}`` and ``{"k": "written", "t": wall time,
"upserted": [[uuid, state, downloaded], ...], "removed": [uuid, ...]}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from revaer_core.events import Event, ProgressUpdated, StateChanged
from revaer_core.status import TorrentStatus


class EventLog:
    """Appends events and written batches to ``path``; safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = path.open("a", encoding="utf-8", buffering=1)  # line-buffered
        self._names: dict[int, str] = {}  #: each torrent id's text by its number, made once (see on_written)

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)

    def on_event(self, event: Event) -> None:
        """A bus subscriber: one line per event, with the fields a store check needs."""
        payload = event.payload
        record: dict[str, Any] = {"k": "event", "t": time.time(), "id": event.id, "type": type(payload).__name__}
        torrent_id: UUID | None = getattr(payload, "torrent_id", None)
        if torrent_id is not None:
            record["torrent"] = str(torrent_id)
        if isinstance(payload, ProgressUpdated):
            record["downloaded"] = payload.downloaded
        elif isinstance(payload, StateChanged):
            record["state"] = payload.state.value
        self._write(record)

    def on_written(self, upserted: Sequence[TorrentStatus], removed: Sequence[UUID]) -> None:
        """The writer's ``on_written``: what a committed flush stored.

        It runs on the writer's thread, between one flush and the next, for
        every row of each: ``str(UUID)`` and ``Enum.value`` are Python code,
        and with 10,000 torrents they took longer than the flush itself. Each
        id's text is made once, and a state goes to JSON as the string it is.
        """
        at = time.time()
        names = self._names
        rows = []
        for status in upserted:
            number = status.id.int
            name = names.get(number)
            if name is None:
                name = names[number] = str(status.id)
            rows.append([name, status.state, status.progress.downloaded])  # a StrEnum is dumped as its value
        self._write({"k": "written", "t": at, "upserted": rows, "removed": [str(i) for i in removed]})

    def close(self) -> None:
        with self._lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()
