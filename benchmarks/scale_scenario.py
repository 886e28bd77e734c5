"""``revaer run`` at scale, as an operator runs it: 10,000 simulated or 2,000 real libtorrent torrents.

Each run starts the daemon as a subprocess on a private PostgreSQL cluster
with an event log, lets it reach steady state, and stops it with SIGTERM.
From the log and the exit come: the longest gap in the event flow, the
longest gap between committed flushes (how far the store falls behind), the
time from SIGTERM to exit against ``shutdown_deadline_s``, and how many
torrents' last progress the store missed; from PostgreSQL's statistics, the
share of ``torrents`` updates that stayed on their page (HOT). The scale test
asserts the outcomes; the fault bench prints the figures.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import attrs
import psycopg

from revaer_core import RuntimeStore, StoreRole, TorrentStatus
from revaer_core.engine import torrent_id_for
from revaer_core.sources import StoredSource
from revaer_core.testing.clients import free_port, tiny_torrents
from revaer_core.testing.process import DaemonProcess, EventLogView, write_config
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import PrivateCluster, pg_options, stored_progress

SCHEMA = "scale"
FLUSH_MS = 250
DEADLINE_S = 10.0
_STOPPED = re.compile(r"revaer stopped cleanly in ([0-9.]+) s")


@attrs.frozen
class ScaleRun:
    """What one run showed; gaps are in seconds, at steady state (after the adds)."""

    label: str
    events: int  #: events logged at steady state
    event_gap: float  #: the longest time without an event (``inf`` with fewer than two)
    flush_gap: float  #: the longest time between two committed flushes
    sigterm_s: float  #: SIGTERM to exit, measured outside
    exit_code: int
    stopped_in: float | None  #: the daemon's own "stopped cleanly in" figure, when it said so
    lost: int  #: torrents whose last progress in the event log the store does not hold
    stderr: str
    hot_share: float  #: heap-only (HOT) updates of ``torrents`` over all its updates, 0.0 with none
    logged: bool = True  #: whether an event log was kept (the product's ``revaer run`` keeps none)

    def summary(self) -> str:
        said = f"'stopped cleanly in {self.stopped_in:.2f} s'" if self.stopped_in is not None else "not clean"
        flow = (
            f"{self.events:,} events at steady state, longest gap {self.event_gap * 1000:,.0f} ms; longest flush"
            f" gap {self.flush_gap * 1000:,.0f} ms; torrents missing their last progress: {self.lost}; "
            if self.logged
            else ""
        )
        return (
            f"{self.label}: {flow}HOT updates of torrents {self.hot_share:.0%}; "
            f"SIGTERM to exit {self.sigterm_s:.2f} s (deadline {DEADLINE_S:g} s),"
            f" exit {self.exit_code}, {said}"
        )


def _longest_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


def _config(root: Path, cluster: PrivateCluster, engine: dict[str, object]) -> Path:
    return write_config(
        root / "revaer.toml",
        {
            "runtime": {
                "backend": "postgres",
                "data_dir": str(root / "data"),
                "flush_interval_ms": FLUSH_MS,
                "shutdown_deadline_s": DEADLINE_S,
            },
            "runtime.postgres": pg_options(cluster.url, SCHEMA, connect_timeout_s=5),
            "engine": {"download_dir": str(root / "downloads"), **engine},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )


def _hot_share(url: str) -> float:
    """HOT updates of ``torrents`` over all its updates, from the statistics (every writer has exited by now)."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = %s AND relname = 'torrents'",
            (SCHEMA,),
        ).fetchone()
    return row[1] / row[0] if row is not None and row[0] else 0.0


def _run(label: str, cluster: PrivateCluster, root: Path, config: Path, args: list[str], settle_s: float,
         measure_s: float, *, product: bool = False) -> ScaleRun:  # fmt: skip
    log = root / "events.jsonl"
    args = [*args, "--event-log", str(log)] if not product else args
    daemon = DaemonProcess(args, config=config, workdir=root, product=product)
    try:
        daemon.wait_running(timeout=600)
        steady = time.time() + settle_s
        time.sleep(settle_s + measure_s)
        asked = time.monotonic()
        code = daemon.terminate(timeout=120)
        took = time.monotonic() - asked
    finally:
        daemon.kill()
    view = EventLogView.read(log) if log.exists() else EventLogView(events=(), written=())
    times = [e["t"] for e in view.events if e["t"] >= steady]
    commits = [w["t"] for w in view.written if w["t"] >= steady]
    last = {uuid.UUID(e["torrent"]): e["downloaded"] for e in view.of_type("ProgressUpdated")}
    stored = stored_progress(cluster.url, SCHEMA, root)
    clean = _STOPPED.search(daemon.stderr)
    return ScaleRun(
        label=label,
        events=len(times),
        event_gap=_longest_gap(times),
        flush_gap=_longest_gap(commits),
        sigterm_s=took,
        exit_code=code,
        stopped_in=float(clean.group(1)) if clean else None,
        lost=sum(1 for torrent, downloaded in last.items() if stored.get(torrent, -1) < downloaded),
        stderr=daemon.stderr,
        hot_share=_hot_share(cluster.url),
        logged=not product,
    )


def simulated(cluster: PrivateCluster, root: Path, torrents: int = 10_000, *, steps: int = 600,
              settle_s: float = 8.0, measure_s: float = 12.0) -> ScaleRun:  # fmt: skip
    """``torrents`` simulated torrents downloading at once (``steps`` steps of 50 ms each)."""
    config = _config(root, cluster, {})
    args = ["--sim-torrents", str(torrents), "--sim-steps", str(steps)]
    return _run(f"{torrents:,} simulated torrents", cluster, root, config, args, settle_s, measure_s)


def real(cluster: PrivateCluster, root: Path, torrents: int = 2_000, *, settle_s: float = 5.0,
         measure_s: float = 5.0) -> ScaleRun:  # fmt: skip
    """``torrents`` real libtorrent torrents (small seeds, payload on disk), stored before the start.

    The store holds their statuses and sources as an add would leave them;
    the daemon (the product's ``revaer run``, which keeps no event log: only
    the stop is measured) restores each from its source, checks the payload
    and seeds.
    """
    made = tiny_torrents(root / "downloads", torrents)
    now = datetime.now(UTC)
    ids = [torrent_id_for(t.info_hash) for t in made]
    store = RuntimeStore.open(PostgresStore(), name="postgres", options=pg_options(cluster.url, SCHEMA),
                              data_dir=root / "seeding", role=StoreRole.DAEMON)  # fmt: skip
    try:
        store.upsert_torrents(
            [
                TorrentStatus(id=i, name=t.name, download_dir=str(t.save_path), added_at=now, last_updated=now)
                for i, t in zip(ids, made, strict=True)
            ]
        )
        store.save_torrent_sources(
            [StoredSource(torrent_id=i, added_at=now, metainfo=t.metainfo) for i, t in zip(ids, made, strict=True)]
        )
    finally:
        store.close()
    config = _config(root, cluster, {"listen_interfaces": f"127.0.0.1:{free_port()}"})
    return _run(f"{torrents:,} libtorrent torrents", cluster, root, config, [], settle_s, measure_s, product=True)
