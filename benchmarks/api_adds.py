"""Adding torrents through the API, one request each, against the engine's own add rate.

Both sides add the same metainfo to a real libtorrent session; ours also
stores each torrent, its source and its choices before the answer (the
durable add), so the ratio is what the acknowledgement costs. Every row is
checked in the store afterwards.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import libtorrent as lt

from revaer_core import RuntimeStore
from revaer_core.control.metainfo import read_metainfo
from revaer_core.daemon import Daemon
from revaer_core.engine import AddOptions, TorrentSource
from revaer_core.engine.libtorrent import LibtorrentEngine
from revaer_core.settings import ApiSettings, EngineSettings, RuntimeSettings, Settings

#: Clients posting at once: what a script adding a folder of torrents would use.
CLIENTS = 8


def metainfos(count: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct single-file torrents (no payload needed: nothing is downloaded)."""
    out = []
    for n in range(count):
        pieces = hashlib.sha1(f"{seed}:{n}".encode()).digest()  # noqa: S324 - test data
        info: dict[bytes, Any] = {b"name": f"bench-{seed}-{n:06d}.bin".encode(), b"piece length": 16384,
                                  b"length": 16384, b"pieces": pieces}  # fmt: skip
        document: dict[bytes, Any] = {b"info": info}
        out.append(bytes(lt.bencode(document)))
    return out


def engine_rate(torrents: list[bytes], save_path: Path) -> float:
    """Adds per second of a bare libtorrent engine: no store, no API."""
    engine = LibtorrentEngine(lambda _: None, RuntimeStore.none(), EngineSettings(download_dir=save_path))
    engine.start()
    try:
        started = time.perf_counter()
        for data in torrents:
            engine.add(TorrentSource(metainfo=data), AddOptions(save_path))
        return len(torrents) / (time.perf_counter() - started)
    finally:
        engine.close()


def api_rate(torrents: list[bytes], url: str, schema: str, data_dir: Path) -> float:
    """Adds per second through ``POST /v1/torrents`` of a daemon on the PostgreSQL store."""
    settings = Settings(
        runtime=RuntimeSettings(
            backend="postgres", data_dir=data_dir, backend_options={"postgres": {"dsn": url, "schema": schema}}
        ),
        engine=EngineSettings(download_dir=data_dir / "downloads"),
        api=ApiSettings(port=0),
    )
    daemon = Daemon(settings, engine="libtorrent")
    daemon.start()
    try:
        token = (data_dir / "api-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-bittorrent"}
        with httpx.Client(base_url=daemon.api.url, headers=headers, timeout=60) as client:

            def add(data: bytes) -> Any:
                answer = client.post("/v1/torrents", content=data)
                assert answer.status_code == 201, answer.text
                return answer

            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(add, torrents))
            elapsed = time.perf_counter() - started
        assert daemon.store is not None
        stored = {s.id for s in daemon.store.load_torrents()}
        sources = daemon.store.load_torrent_sources()
        wanted = {read_metainfo(data).torrent_id for data in torrents}
        assert wanted <= stored and wanted <= set(sources), "an acknowledged add is missing from the store"
        return len(torrents) / elapsed
    finally:
        daemon.stop()
