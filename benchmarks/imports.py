"""Importing 1,000 torrents from each real client, against the time the client takes to start with them.

For each of qbittorrent-nox and transmission-daemon: make ``--count`` small
local torrents (payload on disk), let the client take them all and verify
them, stop it cleanly, then time

(qBittorrent takes them with ``skip_checking``, since the payload is known
complete; Transmission verifies each as it takes it.)

- the client's own start with them: from launch until its API lists every
  torrent and none is checking (the baseline);
- ``revaer import`` of its folder into a fresh PostgreSQL schema (a
  subprocess, as an operator runs it, no daemon running);
- the next ``revaer run``'s restore: a daemon's start until its libtorrent
  engine reports every imported torrent complete (no recheck).

Printed as seconds and as ratios against the baseline. The database is
``$REVAER_BENCH_DATABASE_URL``, else ``$REVAER_TEST_DATABASE_URL``. The
clients listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from revaer_core.daemon import Daemon
from revaer_core.demo.seeder import FAST_SESSION
from revaer_core.engine import torrent_id_for
from revaer_core.testing.clients import (
    LocalTorrent,
    Qbittorrent,
    Transmission,
    free_port,
    make_torrents,
)
from revaer_core.testing.importing import config_for, settings_for
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import pg_options

WAIT_S = 1200.0


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _qbittorrent(root: Path, torrents: Sequence[LocalTorrent]) -> tuple[Path, float]:
    client = Qbittorrent(root / "qbt")
    client.start()
    try:
        for chunk in range(0, len(torrents), 100):
            files = {f"{t.name}.torrent": t.metainfo for t in torrents[chunk : chunk + 100]}
            # skip_checking: the payload is known complete; hashing 1,000 torrents one by one is not what is timed
            fields = {"savepath": str(torrents[0].save_path), "skip_checking": "true"}
            client.call("torrents/add", fields, files=files)
        wait_for(lambda: _qbt_settled(client, len(torrents)), "qBittorrent to take every torrent", WAIT_S, 0.5)
    finally:
        client.stop()
    return client.backup, _restart_time("qBittorrent", client, lambda: _qbt_settled(client, len(torrents)))


def _qbt_settled(client: Qbittorrent, count: int) -> bool:
    listed = client.torrents()
    busy = ("checking", "queued", "meta", "allocating", "unknown", "moving")
    return len(listed) == count and not any(t["state"].startswith(busy) for t in listed.values())


def _transmission(root: Path, torrents: Sequence[LocalTorrent]) -> tuple[Path, float]:
    client = Transmission(root / "transmission", torrents[0].save_path)
    client.start()
    try:
        for t in torrents:
            client.add(t)
        wait_for(lambda: _tr_settled(client, len(torrents)), "Transmission to take every torrent", WAIT_S, 0.5)
    finally:
        client.stop()
    return client.config, _restart_time("Transmission", client, lambda: _tr_settled(client, len(torrents)))


def _restart_time(name: str, client: Qbittorrent | Transmission, settled: Callable[[], bool]) -> float:
    """Seconds from a start of the stopped ``client`` until ``settled``; it is stopped again after."""

    def restart() -> None:
        client.start()
        wait_for(settled, f"{name} to list every torrent", WAIT_S, 0.05)

    started = _timed(restart)
    client.stop()
    return started


def _tr_settled(client: Transmission, count: int) -> bool:
    listed = client.rpc("torrent-get", {"fields": ["status", "percentDone"]})["torrents"]
    return len(listed) == count and all(t["status"] not in (1, 2) for t in listed)


def _revaer(root: Path, url: str, kind: str, folder: Path, torrents: Sequence[LocalTorrent]) -> tuple[float, float]:
    """Seconds for ``revaer import`` (a subprocess) and for the next start's restore of every torrent."""
    schema = f"bench_import_{uuid.uuid4().hex[:8]}"
    settings = settings_for(root / f"revaer-{kind}", pg_options(url, schema), torrents[0].save_path, free_port())
    config = config_for(root / f"revaer-{kind}.toml", settings)
    subprocess.run([sys.executable, "-m", "revaer_core", "--config", str(config), "runtime", "migrate"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    command = [sys.executable, "-m", "revaer_core", "--config", str(config), "import", kind, str(folder)]
    imported = _timed(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL))
    daemon = Daemon(settings, engine="libtorrent", serve_api=False, engine_overrides=FAST_SESSION)
    ids = [torrent_id_for(t.info_hash) for t in torrents]

    def restore() -> None:
        daemon.start()
        orchestrator = daemon.orchestrator
        assert orchestrator is not None

        def complete() -> bool:
            statuses = [orchestrator.catalog.get(i) for i in ids]
            return all(
                s is not None and s.progress.total and s.progress.downloaded == s.progress.total for s in statuses
            )

        wait_for(complete, "the engine to report every imported torrent complete", WAIT_S, 0.05)

    try:
        restored = _timed(restore)
    finally:
        daemon.stop()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return imported, restored


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="torrents per client (default 1000)")
    parser.add_argument("--client", choices=["qbittorrent", "transmission", "both"], default="both")
    args = parser.parse_args(argv)
    url = os.environ.get("REVAER_BENCH_DATABASE_URL") or os.environ.get("REVAER_TEST_DATABASE_URL")
    if not url:
        parser.error("set REVAER_BENCH_DATABASE_URL (or REVAER_TEST_DATABASE_URL) to a PostgreSQL database")
    kinds = ["qbittorrent", "transmission"] if args.client == "both" else [args.client]
    with tempfile.TemporaryDirectory(prefix="revaer-bench-import-") as tmp:
        root = Path(tmp)
        torrents = make_torrents(root / "downloads", args.count, files=1, size=16 * 1024)
        print(f"{args.count} torrents of one 16 KiB file each, complete on disk")
        print(f"{'client':<14}{'client start':>14}{'revaer import':>15}{'ratio':>8}{'revaer restore':>16}{'ratio':>8}")
        for kind in kinds:
            reader = _qbittorrent if kind == "qbittorrent" else _transmission
            folder, started = reader(root / kind, torrents)
            imported, restored = _revaer(root, url, kind, folder, torrents)
            print(f"{kind:<14}{started:>13.2f}s{imported:>14.2f}s{imported / started:>7.2f}x"
                  f"{restored:>15.2f}s{restored / started:>7.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
