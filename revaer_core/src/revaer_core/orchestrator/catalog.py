"""The catalog: the latest status of every torrent the runtime knows, by id."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from uuid import UUID

from revaer_core.status import TorrentStatus


class Catalog(Mapping[UUID, TorrentStatus]):
    """A read-only mapping for the API and CLI; only the orchestrator changes it.

    Statuses are frozen, so a reader holding one never sees it change; iteration
    works on a snapshot taken under the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[UUID, TorrentStatus] = {}

    def __getitem__(self, torrent_id: UUID) -> TorrentStatus:
        return self._statuses[torrent_id]

    def __len__(self) -> int:
        return len(self._statuses)

    def __iter__(self) -> Iterator[UUID]:
        with self._lock:
            return iter(list(self._statuses))

    def snapshot(self) -> dict[UUID, TorrentStatus]:
        """A copy of the whole catalog at one instant."""
        with self._lock:
            return dict(self._statuses)

    # -- the orchestrator's side ----------------------------------------------------

    def _put(self, status: TorrentStatus) -> None:
        with self._lock:
            self._statuses[status.id] = status

    def _pop(self, torrent_id: UUID) -> None:
        with self._lock:
            self._statuses.pop(torrent_id, None)

    def _load(self, statuses: Iterable[TorrentStatus]) -> None:
        with self._lock:
            self._statuses = {status.id: status for status in statuses}
