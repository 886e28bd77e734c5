"""A second BitTorrent session on 127.0.0.1 that keeps a daemon's torrents busy: real traffic, at a set pace.

It seeds one set of torrents to the daemon (each upload limited to
``pace`` bytes a second, so the daemon's downloads last) and downloads
another set from it (the daemon seeds those). It connects every torrent to
the daemon's listen port, and connects again whatever has lost its peer (a
torrent the daemon was still checking refuses peers). A bare libtorrent
session, not Revaer's engine: one thread asks it for the torrents whose
status changed, once a second, so thousands of torrents cost the benchmark
process one call a second, not one per torrent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import libtorrent as lt

from revaer_core.testing.clients import LocalTorrent

#: How often the statuses are read and torrents without a peer connected again.
WATCH_S = 1.0
#: How long a connection attempt is given before a torrent still without its peer is connected again.
RECONNECT_S = 5.0


def _session() -> lt.session:
    settings: lt.settings_pack = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert_category.status,  # for state_update_alert
        "connections_limit": 100_000,  # one connection per torrent, thousands of torrents
        "unchoke_slots_limit": -1,  # upload to every torrent of the daemon at once
        "connection_speed": 1000,  # connection attempts a second: libtorrent's 30 take a minute for 2,000 torrents
        "tick_interval": 100,
    }
    return lt.session(lt.session_params(settings))


@attrs.define
class _Seen:
    """What the swarm last saw of one of its torrents."""

    peers: int = 0
    sent: int = 0  #: payload uploaded ever
    sending: bool = False
    met: bool = False  #: has had its peer at some point
    asked: float = float("-inf")  #: monotonic time of the last connection attempt


class LoopbackSwarm:
    """Seeds ``seeds`` to the daemon at ``pace`` bytes/s each, and downloads ``leeches`` from it into ``leech_dir``."""

    def __init__(self, seeds: Sequence[LocalTorrent], leeches: Sequence[LocalTorrent], *, leech_dir: Path,
                 pace: int) -> None:  # fmt: skip
        self._session = _session()
        leech_dir.mkdir(parents=True, exist_ok=True)
        self._seeds = [self._add(t, t.save_path, seed=True, pace=pace) for t in seeds]
        self._leeches = [self._add(t, leech_dir, seed=False, pace=pace) for t in leeches]
        self._seen = {handle: _Seen() for handle in (*self._seeds, *self._leeches)}
        self._lock = threading.Lock()
        self._peer: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _add(self, torrent: LocalTorrent, save_path: Path, *, seed: bool, pace: int) -> lt.torrent_handle:
        params = lt.load_torrent_buffer(torrent.metainfo)
        params.save_path = str(save_path)
        params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        params.flags |= lt.torrent_flags.update_subscribe
        if seed:
            params.flags |= lt.torrent_flags.seed_mode  # the payload is there: hash a piece only when it is sent
            params.upload_limit = pace
        else:
            params.download_limit = pace
        return self._session.add_torrent(params)

    def connect(self, endpoint: tuple[str, int]) -> None:
        """Connect every torrent to ``endpoint``, and again each time one has no peer, until :meth:`close`."""
        self._peer = endpoint
        self._thread = threading.Thread(target=self._watch, name="loopback-swarm", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._session.post_torrent_updates(0)
            end = time.monotonic() + WATCH_S
            while (left := end - time.monotonic()) > 0 and not self._stop.is_set():
                self._session.wait_for_alert(int(left * 1000))
                for alert in self._session.pop_alerts():
                    if isinstance(alert, lt.state_update_alert):
                        self._take(alert.status)
            self._connect_lonely()

    def _take(self, statuses: Sequence[lt.torrent_status]) -> None:
        with self._lock:
            for status in statuses:
                seen = self._seen.get(status.handle)
                if seen is not None:
                    seen.peers, seen.sent = int(status.num_peers), int(status.all_time_upload)
                    seen.sending = seen.peers > 0 and status.upload_payload_rate > 0
                    seen.met = seen.met or seen.peers > 0

    def _connect_lonely(self) -> None:
        assert self._peer is not None
        now = time.monotonic()
        with self._lock:
            lonely = [h for h, seen in self._seen.items() if seen.peers == 0 and now - seen.asked >= RECONNECT_S]
            for handle in lonely:
                self._seen[handle].asked = now
        for handle in lonely:
            handle.connect_peer(self._peer)

    def counts(self) -> tuple[int, int, int]:
        """(seeds that have sent the daemon data, leeches that have met it, seeds sending now)."""
        with self._lock:
            return (
                sum(1 for h in self._seeds if self._seen[h].sent > 0),
                sum(1 for h in self._leeches if self._seen[h].met),
                sum(1 for h in self._seeds if self._seen[h].sending),
            )

    def busy(self) -> bool:
        """Whether every seed has sent the daemon data and every leech has met it: every torrent had traffic."""
        sent, met, _ = self.counts()
        return sent == len(self._seeds) and met == len(self._leeches)

    def describe(self) -> str:
        """What the load is doing now, in a few words."""
        sent, met, sending = self.counts()
        return (
            f"{sent:,} of {len(self._seeds):,} downloads have had data ({sending:,} are receiving now),"
            f" {met:,} of {len(self._leeches):,} seeds have met their peer"
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._session.pause()

    def __enter__(self) -> LoopbackSwarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
