"""``revaer run`` at scale, as an operator runs it: 10,000 simulated or 2,000 real libtorrent torrents.

Each run starts the daemon as a subprocess with an event log, lets it reach
steady state, and stops it with SIGTERM. From the log and the exit come: the
longest gap in the event flow, how far the store falls behind (the longest
gap between committed flushes, and the longest a progress the catalog showed
waited for a flush that stored it), the time from SIGTERM to exit against
``shutdown_deadline_s``, and how many torrents the store misses or holds an
older progress of; from PostgreSQL's statistics, the share of ``torrents``
updates that stayed on their page (HOT). The scale tests assert the
outcomes; the fault bench prints the figures.

The real run is busy: half of its torrents download from a loopback swarm
at a set pace (added through the API while the daemon runs), the other half
are restored from the store and seed to it
(:mod:`loopback_swarm`).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import itertools
import re
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import httpx
import psycopg
from loopback_swarm import LoopbackSwarm

from revaer_core import TorrentStatus
from revaer_core.engine import torrent_id_for
from revaer_core.sources import StoredSource
from revaer_core.testing.clients import LocalTorrent, free_port, tiny_torrents
from revaer_core.testing.process import DaemonProcess, EventLogView, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import PrivateCluster, open_pg_store, pg_options, stored_progress

SCHEMA = "scale"
FLUSH_MS = 250
DEADLINE_S = 10.0
_STOPPED = re.compile(r"revaer stopped cleanly in ([0-9.]+) s")
#: Clients adding torrents through the API at once, as a script adding a folder would.
ADD_CLIENTS = 8


@attrs.frozen
class ScaleRun:
    """What one run showed; gaps are in seconds, at steady state (after the adds, until SIGTERM)."""

    label: str
    events: int  #: events logged at steady state
    event_gap: float  #: the longest time without an event (``inf`` with fewer than two)
    flush_gap: float  #: the longest time between two committed flushes
    store_lag: float  #: the longest a progress the catalog showed waited for a committed flush holding it
    sigterm_s: float  #: SIGTERM to exit, measured outside
    exit_code: int
    stopped_in: float | None  #: the daemon's own "stopped cleanly in" figure, when it said so
    lost: int  #: torrents whose last progress in the event log the store does not hold
    missing: int  #: torrents of the run (in the event log, or added) that the store does not hold at all
    stderr: str
    hot_share: float  #: heap-only (HOT) updates of ``torrents`` over all its updates, 0.0 with none
    load: str = ""  #: what the load was doing when SIGTERM came (the real run's downloads)

    def summary(self) -> str:
        said = f"'stopped cleanly in {self.stopped_in:.2f} s'" if self.stopped_in is not None else "not clean"
        load = f"; {self.load}" if self.load else ""
        return (
            f"{self.label}: {self.events:,} events at steady state, longest gap {self.event_gap * 1000:,.0f} ms;"
            f" longest flush gap {self.flush_gap * 1000:,.0f} ms, store lag {self.store_lag * 1000:,.0f} ms;"
            f" torrents missing from the store: {self.missing}, missing their last progress: {self.lost};"
            f" HOT updates of torrents {self.hot_share:.0%}; SIGTERM to exit {self.sigterm_s:.2f} s"
            f" (deadline {DEADLINE_S:g} s), exit {self.exit_code}, {said}{load}"
        )


def _longest_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


def store_lag(view: EventLogView, since: float, until: float) -> float:
    """How far the store's progress fell behind the catalog's between ``since`` and ``until`` (the stop).

    For each progress logged in that window: the time until a committed flush
    held as much, or until ``until`` when none did by then (the stop's own
    flush is not steady state). A progress the store already held (an event
    that changed only a rate) waited 0.
    """
    flushes: dict[str, tuple[list[float], list[int]]] = {}
    for written in view.written:
        for torrent, _state, downloaded in written["upserted"]:
            times, held = flushes.setdefault(torrent, ([], []))
            times.append(written["t"])
            held.append(max(downloaded, held[-1]) if held else downloaded)  # what the store held by then
    worst = 0.0
    for event in view.of_type("ProgressUpdated"):
        if not since <= event["t"] < until:
            continue
        times, held = flushes.get(event["torrent"], ([], []))
        first = bisect.bisect_left(held, event["downloaded"])
        stored_at = times[first] if first < len(times) else until
        worst = max(worst, min(stored_at, until) - event["t"])
    return worst


def _config(root: Path, url: str, schema: str, engine: dict[str, object]) -> Path:
    return write_config(
        root / "revaer.toml",
        {
            "runtime": {
                "backend": "postgres",
                "data_dir": str(root / "data"),
                "flush_interval_ms": FLUSH_MS,
                "shutdown_deadline_s": DEADLINE_S,
            },
            "runtime.postgres": pg_options(url, schema, connect_timeout_s=5),
            "engine": {"download_dir": str(root / "downloads"), **engine},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )


def _hot_share(url: str, schema: str) -> float:
    """HOT updates of ``torrents`` over all its updates, from the statistics (every writer has exited by now)."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = %s AND relname = 'torrents'",
            (schema,),
        ).fetchone()
    return row[1] / row[0] if row is not None and row[0] else 0.0


def _run(label: str, url: str, schema: str, root: Path, config: Path, args: list[str], settle_s: float,
         measure_s: float, *, busy: Callable[[DaemonProcess], None] = lambda _: None,
         at_stop: Callable[[], str] = lambda: "", expected: Collection[uuid.UUID] = ()) -> ScaleRun:  # fmt: skip
    """Run the daemon until ``busy`` returns (the load is on), ``settle_s``, then ``measure_s`` measured; SIGTERM."""
    log = root / "events.jsonl"
    daemon = DaemonProcess([*args, "--event-log", str(log)], config=config, workdir=root)
    try:
        daemon.wait_running(timeout=600)
        busy(daemon)
        steady = time.time() + settle_s
        time.sleep(settle_s + measure_s)
        load = at_stop()
        stop = time.time()
        asked = time.monotonic()
        code = daemon.terminate(timeout=120)
        took = time.monotonic() - asked
    finally:
        daemon.kill()
    view = EventLogView.read(log)
    times = [e["t"] for e in view.events if steady <= e["t"] < stop]
    commits = [w["t"] for w in view.written if steady <= w["t"] < stop]
    last = {uuid.UUID(e["torrent"]): e["downloaded"] for e in view.of_type("ProgressUpdated")}
    seen = {uuid.UUID(e["torrent"]) for e in view.events if "torrent" in e} | set(expected)
    stored = stored_progress(url, schema, root)
    clean = _STOPPED.search(daemon.stderr)
    return ScaleRun(
        label=label,
        events=len(times),
        event_gap=_longest_gap(times),
        flush_gap=_longest_gap(commits),
        store_lag=store_lag(view, steady, stop),
        sigterm_s=took,
        exit_code=code,
        stopped_in=float(clean.group(1)) if clean else None,
        lost=sum(1 for torrent, downloaded in last.items() if stored.get(torrent, -1) < downloaded),
        missing=len(seen - stored.keys()),
        stderr=daemon.stderr,
        hot_share=_hot_share(url, schema),
        load=load,
    )


def simulated(cluster: PrivateCluster, root: Path, torrents: int = 10_000, *, steps: int = 600,
              settle_s: float = 8.0, measure_s: float = 12.0) -> ScaleRun:  # fmt: skip
    """``torrents`` simulated torrents downloading at once (``steps`` steps of 50 ms each)."""
    config = _config(root, cluster.url, SCHEMA, {})
    args = ["--sim-torrents", str(torrents), "--sim-steps", str(steps)]
    return _run(f"{torrents:,} simulated torrents", cluster.url, SCHEMA, root, config, args, settle_s, measure_s)


def _store_seeds(url: str, schema: str, root: Path, seeds: Sequence[LocalTorrent]) -> None:
    """Statuses and sources of ``seeds`` as an add leaves them: the daemon restores them, checks the payload, seeds."""
    now = datetime.now(UTC)
    ids = [torrent_id_for(t.info_hash) for t in seeds]
    store = open_pg_store(url, schema, root / "seeding")
    try:
        store.upsert_torrents(
            [
                TorrentStatus(id=i, name=t.name, download_dir=str(t.save_path), added_at=now, last_updated=now)
                for i, t in zip(ids, seeds, strict=True)
            ]
        )
        store.save_torrent_sources(
            [StoredSource(torrent_id=i, added_at=now, metainfo=t.metainfo) for i, t in zip(ids, seeds, strict=True)]
        )
    finally:
        store.close()


def add_through_api(daemon: DaemonProcess, data_dir: Path, torrents: Sequence[LocalTorrent]) -> None:
    """``POST /v1/torrents`` of each torrent's metainfo, :data:`ADD_CLIENTS` at a time; each answered once stored."""
    token = (data_dir / "api-token").read_text(encoding="utf-8").strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-bittorrent"}
    with httpx.Client(base_url=daemon.api_url, headers=headers, timeout=120) as client:

        def add(torrent: LocalTorrent) -> None:
            answer = client.post("/v1/torrents", content=torrent.metainfo)
            assert answer.status_code == 201, f"add of {torrent.name}: {answer.status_code} {answer.text}"

        with concurrent.futures.ThreadPoolExecutor(ADD_CLIENTS) as pool:
            list(pool.map(add, torrents))


def real(url: str, schema: str, root: Path, torrents: int = 2_000, *, payload: int = 1024 * 1024,
         pace: int = 4 * 1024, seed_payload: int = 1024 * 1024, settle_s: float = 5.0, measure_s: float = 15.0,
         busy_timeout_s: float = 180.0) -> ScaleRun:  # fmt: skip
    """``torrents`` real libtorrent torrents with traffic on 127.0.0.1: half downloading, half seeding.

    The seeding half (``seed_payload`` bytes each, on disk) is in the store
    before the start, as an add leaves it: the daemon restores each from its
    source, checks its payload and seeds it to a loopback swarm, which
    downloads at ``pace`` bytes/s a torrent. The downloading half
    (``payload`` bytes each) is added through the API once the daemon runs and
    downloaded from that swarm, each at ``pace``: at the defaults they take
    four minutes, longer than the run. Steady state begins ``settle_s`` after
    every download has had data and every seed has met its peer.
    """
    half = torrents // 2
    downloads = root / "downloads"
    seeds = tiny_torrents(downloads, torrents - half, size=seed_payload, prefix="seed")
    wanted = tiny_torrents(root / "swarm", half, size=payload, prefix="download")
    _store_seeds(url, schema, root, seeds)
    port = free_port()
    # each torrent holds one connection to the swarm: past libtorrent's 200 only a few would have traffic
    config = _config(root, url, schema, {"listen_interfaces": f"127.0.0.1:{port}", "connections_limit": 2 * torrents})
    with LoopbackSwarm(seeds=wanted, leeches=seeds, leech_dir=root / "swarm-leech", pace=pace) as swarm:
        ramp: list[float] = []

        def busy(daemon: DaemonProcess) -> None:
            began = time.monotonic()
            add_through_api(daemon, root / "data", wanted)
            ramp.append(time.monotonic() - began)
            swarm.connect(("127.0.0.1", port))
            try:
                wait_for(
                    swarm.busy,
                    "every download to have had data and every seed its peer",
                    timeout=busy_timeout_s,
                    interval=0.5,
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {swarm.describe()}") from None
            ramp.append(time.monotonic() - began)

        def at_stop() -> str:
            return (
                f"{half:,} adds through the API took {ramp[0]:.1f} s, every torrent had traffic after {ramp[1]:.0f} s;"
                f" at SIGTERM {swarm.describe()}"
            )

        ids = [torrent_id_for(t.info_hash) for t in (*seeds, *wanted)]
        return _run(f"{torrents:,} libtorrent torrents", url, schema, root, config, ["--engine", "libtorrent"],
                    settle_s, measure_s, busy=busy, at_stop=at_stop, expected=ids)  # fmt: skip
