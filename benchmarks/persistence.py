"""Runtime-persistence benchmarks: every figure is a ratio against a baseline measured in the same run.

The baselines are bare psycopg on the very table
the PostgreSQL store writes, so the ratios say what the store and the
orchestrator cost on top of the database itself:

- sustained persistence through the orchestrator: >= 0.8x COPY+merge, >= 10x one upsert per event;
- handling a progress event with the PostgreSQL store: <= 1.3x handling it with no store in CPU time of
  the process (the writer thread's included), also with another process keeping a core busy;
- hydrating 100,000 torrents (3 files each): >= 0.7x a bare psycopg fetchall of the same rows;
- memory of the hydrated catalog, and flat across 1,000,000 progress events;
- start and stop of ``revaer run`` with 2,000 and 10,000 torrents (``benchmarks/startstop.py``): a
  restart no slower than qBittorrent's, a peak RSS no larger, against a bare libtorrent session (the
  limit); an empty daemon's start under 1 s.

Run it with ``nox -s bench``. The database is ``$REVAER_BENCH_DATABASE_URL``, else
``$REVAER_TEST_DATABASE_URL``, else a private PostgreSQL cluster started for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg
from psycopg import sql

from revaer_core import FileEntry, Progress, Rates, RuntimeStore, TorrentState, TorrentStatus
from revaer_core.bus import EventBus
from revaer_core.events import EventPayload, ProgressUpdated, StateChanged
from revaer_core.orchestrator import TorrentOrchestrator
from revaer_core.settings import RuntimeSettings
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.rows import status_row
from revaer_runtime_pg.schema import STATUS_COLUMNS

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
#: What ``--only`` picks from: the store's own figures, the event-path cost, the daemon under faults and at scale,
#: and its start and stop with 2,000 and 10,000 torrents against a bare libtorrent session and real clients.
SECTIONS = ("persistence", "events", "faults", "startstop")


@attrs.frozen
class Figure:
    """One measured ratio and its target."""

    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    ratio: float
    target: str
    met: bool


def statuses(count: int, *, seed: int = 0) -> list[TorrentStatus]:
    """``count`` downloading torrents with 3 files each, as the catalog holds them."""
    out = []
    for n in range(count):
        name = f"Some.Show.S{n % 30:02d}E{n % 24:02d}.1080p.WEB-DL-{n:06d}"
        files = tuple(
            FileEntry(index=i, path=f"{name}/{name}.part{i}.mkv", size=700_000_000 + i, bytes_completed=n * 1000)
            for i in range(3)
        )
        out.append(
            TorrentStatus(
                id=uuid.UUID(int=(seed << 64) + n + 1),
                name=name,
                state=TorrentState.DOWNLOADING,
                progress=Progress(downloaded=n * 3000, total=2_100_000_003, eta_seconds=3600),
                rates=Rates(download_bps=1_000_000, upload_bps=50_000, ratio=0.1),
                files=files,
                download_dir="/srv/downloads",
                added_at=EPOCH + timedelta(seconds=n),
                last_updated=EPOCH + timedelta(seconds=n),
            )
        )
    return out


# -- the database ------------------------------------------------------------------------


@contextlib.contextmanager
def database() -> Iterator[str]:
    url = os.environ.get("REVAER_BENCH_DATABASE_URL") or os.environ.get("REVAER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from revaer_runtime_pg.testing import PrivateCluster

    with PrivateCluster() as cluster:
        yield cluster.url


class Bench:
    """One schema of the PostgreSQL store, and bare psycopg on the same tables."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        self.data_dir = data_dir
        self.torrents = sql.Identifier(self.schema, "torrents")
        self.columns = sql.SQL(", ").join(sql.Identifier(c) for c in STATUS_COLUMNS)

    def store(self) -> RuntimeStore:
        options = {"dsn": self.url, "schema": self.schema, "pool_size": 4}
        return RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir=self.data_dir)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, **kwargs)

    def truncate(self) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(self.torrents))
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(self.torrents))

    def drop(self) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    # -- baselines -------------------------------------------------------------------------

    def upsert_sql(self) -> sql.Composed:
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in STATUS_COLUMNS if c != "id"
        )
        values = sql.SQL(", ").join(sql.Placeholder() * len(STATUS_COLUMNS))
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
            self.torrents, self.columns, values, updates
        )

    def one_upsert_per_event(self, rows: Sequence[tuple[Any, ...]]) -> float:
        """The original system's way: one autocommit statement per event. Returns seconds."""
        statement = self.upsert_sql()
        with self.connect(autocommit=True) as conn:
            started = time.perf_counter()
            for row in rows:
                conn.execute(statement, row)
            return time.perf_counter() - started

    def copy_merge(self, rows: Sequence[tuple[Any, ...]]) -> float:
        """COPY into a temporary table and one INSERT ... SELECT ... ON CONFLICT. Returns seconds."""
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in STATUS_COLUMNS if c != "id"
        )
        with self.connect() as conn:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    sql.SQL("CREATE TEMP TABLE staging (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                        self.torrents
                    )
                )
                with cur.copy(sql.SQL("COPY staging ({}) FROM STDIN").format(self.columns)) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM staging ON CONFLICT (id) DO UPDATE SET {}").format(
                        self.torrents, self.columns, self.columns, updates
                    )
                )
            return time.perf_counter() - started

    def fetchall(self) -> float:
        """A bare psycopg fetchall of every status row (tuples, no objects). Returns seconds."""
        with self.connect() as conn, conn.cursor() as cur:
            started = time.perf_counter()
            cur.execute(sql.SQL("SELECT {} FROM {}").format(self.columns, self.torrents))
            rows = cur.fetchall()
            elapsed = time.perf_counter() - started
        assert rows
        return elapsed


def text_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """A store row as plain psycopg sends it: the files document as JSON text, not JSONB's binary form."""
    at = STATUS_COLUMNS.index("files")
    files = row[at]
    return (*row[:at], None if files is None else bytes(files[1:]).decode(), *row[at + 1 :])


def best_of(runs: int, measure: Callable[[], float], between: Callable[[], None] | None = None) -> float:
    """The fastest of ``runs`` measurements (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(runs):
        if between is not None:
            between()
        gc.collect()
        times.append(measure())
    return min(times)


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the figures ------------------------------------------------------------------------------


def sustained_persistence(bench: Bench, count: int, runs: int) -> list[Figure]:
    """Status changes through the bus, the orchestrator and the writer, until the store holds them."""
    base = statuses(count)
    store = bench.store()

    def seed_rows() -> None:
        """Every measure updates rows that exist, as status changes do."""
        bench.truncate()
        store.upsert_torrents(base)

    changed_rows = [
        text_row(
            status_row(attrs.evolve(s, progress=attrs.evolve(s.progress, downloaded=s.progress.downloaded + 1)), [])
        )
        for s in base
    ]
    slow_rows = changed_rows[: max(count // 4, 1000)]
    per_event = len(slow_rows) / best_of(1, lambda: bench.one_upsert_per_event(slow_rows), seed_rows)
    copy_rate = count / best_of(runs, lambda: bench.copy_merge(changed_rows), seed_rows)

    settings = RuntimeSettings(flush_interval_ms=250)
    changes = [
        ProgressUpdated(
            torrent_id=s.id, downloaded=s.progress.downloaded + 1, total=s.progress.total, download_bps=2_000_000
        )
        for s in base
    ]

    def orchestrator_with_changes(bus: EventBus) -> TorrentOrchestrator:
        orchestrator = TorrentOrchestrator(bus, store, settings=settings)
        orchestrator.catalog._load(base)  # the torrents exist; what changes is their progress
        return orchestrator

    state_changes = [StateChanged(torrent_id=s.id, state=TorrentState.STOPPED) for s in base]

    def writer_drain(events: Sequence[EventPayload] = changes) -> float:
        """The changes are folded and waiting (as after a burst); time the writer putting them in the store."""
        bus = EventBus(capacity=1024)
        orchestrator = orchestrator_with_changes(bus)
        bus.subscribe(orchestrator.handle)  # fold without a writer thread: the changes wait in the buffer
        for change in events:
            bus.publish(change)
        started = time.perf_counter()
        orchestrator.start()
        assert orchestrator.flush(timeout=120)
        elapsed = time.perf_counter() - started
        orchestrator.close()
        return elapsed

    def end_to_end() -> float:
        """From the first event to the last row in the store: folding included, for information."""
        bus = EventBus(capacity=1024)
        orchestrator = orchestrator_with_changes(bus)
        orchestrator.start()
        started = time.perf_counter()
        for change in changes:
            bus.publish(change)
        assert orchestrator.flush(timeout=120)
        elapsed = time.perf_counter() - started
        orchestrator.close()
        return elapsed

    ours = count / best_of(runs, writer_drain, seed_rows)
    whole_rows = count / best_of(runs, lambda: writer_drain(state_changes), seed_rows)
    whole = count / best_of(runs, end_to_end, seed_rows)
    store.close()
    return [
        Figure(
            "persistence via writer",
            ours,
            "rows/s",
            copy_rate,
            "COPY + merge",
            ours / copy_rate,
            ">= 0.8",
            ours / copy_rate >= 0.8,
        ),
        Figure(
            "persistence via writer",
            ours,
            "rows/s",
            per_event,
            "one upsert per event",
            ours / per_event,
            ">= 10",
            ours / per_event >= 10,
        ),
        Figure(
            "events to rows, folding included",
            whole,
            "rows/s",
            copy_rate,
            "COPY + merge",
            whole / copy_rate,
            "(info)",
            True,
        ),
        Figure(
            "whole-status changes via writer",
            whole_rows,
            "rows/s",
            copy_rate,
            "COPY + merge",
            whole_rows / copy_rate,
            "(info)",
            True,
        ),
    ]


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Another process keeping one core busy for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def event_cost(bench: Bench, torrents: int, events: int, pairs: int) -> tuple[list[Figure], list[str]]:
    """Handling progress events with the PostgreSQL store selected vs with no store, idle and with a core busy."""
    figures = _event_cost(bench, torrents, events, pairs, "")
    with busy_core():
        figures += _event_cost(bench, torrents, events, pairs, ", core busy")
    note = (
        f"event cost: CPU time of this process (every thread, the store writer's included; not the PostgreSQL "
        f"server's) from the first of {events:,} events until the store holds the last, per event; the ratio is "
        f"the median of {pairs} interleaved runs with and without the store (wall time of publishing: info)"
    )
    return figures, [note]


def _event_cost(bench: Bench, torrents: int, events: int, pairs: int, label: str) -> list[Figure]:
    base = statuses(torrents, seed=1)
    store = bench.store()
    bench.truncate()
    store.upsert_torrents(base)
    payloads = [
        ProgressUpdated(torrent_id=base[n % torrents].id, downloaded=n, total=2_100_000_003, download_bps=1)
        for n in range(events)
    ]

    def handle(with_store: RuntimeStore) -> tuple[float, float]:
        """CPU seconds until the store holds every event, and wall seconds of publishing them.

        CPU time of the process counts the writer thread's work wherever it
        falls, and stays put when other processes share the machine's cores;
        wall time does not.
        """
        bus = EventBus(capacity=1024)
        orchestrator = TorrentOrchestrator(bus, with_store, settings=RuntimeSettings(flush_interval_ms=250))
        orchestrator.catalog._load(base)
        orchestrator.start()
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        for payload in payloads:
            bus.publish(payload)
        wall = time.perf_counter() - wall
        assert orchestrator.flush(timeout=120)
        cpu = time.process_time() - cpu
        orchestrator.close()
        return cpu, wall

    # interleaved, so a change in the machine's load falls on both sides of a ratio alike
    runs = [(handle(RuntimeStore.none()), handle(store)) for _ in range(pairs)]
    store.close()
    cpu_ratio = statistics.median(pg[0] / none[0] for none, pg in runs)
    wall_ratio = statistics.median(pg[1] / none[1] for none, pg in runs)
    per_none = statistics.median(none[0] for none, _ in runs) / events * 1e6
    per_pg = statistics.median(pg[0] for _, pg in runs) / events * 1e6
    wall_none = statistics.median(none[1] for none, _ in runs) / events * 1e6
    wall_pg = statistics.median(pg[1] for _, pg in runs) / events * 1e6
    return [
        Figure(f"event CPU, PostgreSQL{label}", per_pg, "µs/ev", per_none, "no store", cpu_ratio, "<= 1.3",
               cpu_ratio <= 1.3),
        Figure(f"event wall, PostgreSQL{label}", wall_pg, "µs/ev", wall_none, "no store", wall_ratio,
               "(info)", True),
    ]  # fmt: skip


def hydration(bench: Bench, count: int, runs: int) -> tuple[list[Figure], int]:
    """Loading every status into a fresh catalog vs a bare fetchall of the same rows."""
    store = bench.store()
    bench.truncate()
    base = statuses(count, seed=2)
    for start in range(0, count, 10_000):
        store.upsert_torrents(base[start : start + 10_000])
    with bench.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(bench.torrents))
    bare = count / best_of(runs, bench.fetchall)

    def hydrate() -> float:
        orchestrator = TorrentOrchestrator(EventBus(), store)
        started = time.perf_counter()
        loaded = orchestrator.hydrate()
        elapsed = time.perf_counter() - started
        assert loaded == count
        return elapsed

    ours = count / best_of(runs, hydrate)
    gc.collect()
    tracemalloc.start()
    orchestrator = TorrentOrchestrator(EventBus(), store)
    orchestrator.hydrate()
    catalog_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    return (
        [
            Figure(
                f"hydration of {count:,} torrents",
                ours,
                "rows/s",
                bare,
                "psycopg fetchall",
                ours / bare,
                ">= 0.7",
                ours / bare >= 0.7,
            )
        ],
        catalog_bytes,
    )


def memory_flat(bench: Bench, torrents: int, events: int) -> tuple[int, int]:
    """RSS after a warm-up and after ``events`` progress events over ``torrents`` torrents."""
    store = bench.store()
    bench.truncate()
    base = statuses(torrents, seed=3)
    store.upsert_torrents(base)
    bus = EventBus(capacity=1024)
    orchestrator = TorrentOrchestrator(bus, store, settings=RuntimeSettings(flush_interval_ms=250))
    orchestrator.catalog._load(base)
    orchestrator.start()
    ids = [s.id for s in base]

    def drive(start: int, stop: int) -> None:
        for n in range(start, stop):
            bus.publish(ProgressUpdated(torrent_id=ids[n % torrents], downloaded=n, total=2**40, download_bps=1))

    warm = events // 10
    drive(0, warm)
    assert orchestrator.flush(timeout=120)
    gc.collect()
    before = rss_bytes()
    drive(warm, events)
    assert orchestrator.flush(timeout=120)
    gc.collect()
    after = rss_bytes()
    orchestrator.close()
    store.close()
    return before, after


def adds(bench: Bench, count: int) -> list[Figure]:
    """Durable adds through the API (one request each) against a bare engine's add rate."""
    from api_adds import api_rate, engine_rate, metainfos

    theirs = engine_rate(metainfos(count, seed=1), bench.data_dir / "engine")
    ours = api_rate(metainfos(count, seed=2), bench.url, bench.schema, bench.data_dir / "daemon")
    ratio = ours / theirs
    return [Figure(f"adds of {count:,} torrents through the API", ours, "add/s", theirs, "bare engine",
                   ratio, "report", True)]  # fmt: skip


def streams() -> tuple[list[Figure], float]:
    """The event rate with 200 event-stream clients against none; and the worst ``/health`` meanwhile."""
    from streams import measure

    alone = measure(0, 0).rate
    crowded, worst_health, _ = measure(100, 100)
    figure = Figure("events with 200 stream clients", crowded, "ev/s", alone, "no clients", crowded / alone,
                    ">= 0.8", crowded / alone >= 0.8)  # fmt: skip
    return [figure], worst_health


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller counts, for a smoke run.")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="Run only this section (repeatable); default: all."
    )
    args = parser.parse_args(argv)
    only = set(args.only or SECTIONS)
    scale = 10 if args.quick else 1
    runs = 1 if args.quick else 3
    figures: list[Figure] = []
    notes: list[str] = []
    with database() as url, contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(__import__("tempfile").TemporaryDirectory()))
        bench = Bench(url, data_dir)
        stack.callback(bench.drop)
        bench.store().close()  # the store migrates its schema on first open
        print(f"PostgreSQL: {psycopg.connect(url).info.server_version}  psycopg {psycopg.__version__}")
        if "persistence" in only:
            figures += sustained_persistence(bench, 20_000 // scale, runs)
        if "events" in only:
            # nine pairs: on a shared 2-core machine the ratio of one pair ranges over about +-0.2
            more, said = event_cost(bench, 10_000 // scale, 200_000 // scale, 3 * runs)
            figures += more
            notes += said
        if "startstop" in only:
            from startstop import counts_for, run_figures

            figures += run_figures(url, counts_for(quick=args.quick), runs)
        if "persistence" in only:
            hydrated, catalog_bytes = hydration(bench, 100_000 // scale, runs)
            figures += hydrated
            before, after = memory_flat(bench, 10_000 // scale, 1_000_000 // scale)
            figures += adds(bench, 1_000 // scale)
    if "persistence" in only:
        crowded, worst_health = streams()
        figures += crowded
    if "faults" in only:
        from faults import crash_window, freeze, resume_kill, scale_run

        figures_and_notes = [
            freeze(quick=args.quick),
            scale_run(quick=args.quick),
            crash_window(quick=args.quick),
            resume_kill(quick=args.quick),
        ]
        for more, said in figures_and_notes:
            figures += more
            notes += said

    print()
    print(f"{'measure':<38} {'ours':>14} {'baseline':>24} {'ratio':>7}  target  ")
    for f in figures:
        print(
            f"{f.name:<38} {f.value:>9,.1f} {f.unit:<5}"
            f"{f.baseline:>10,.1f} ({f.baseline_name[:11]:>11}) {f.ratio:>7.2f}  "
            f"{f.target:<7} {'met' if f.met else 'MISSED'}"
        )
    if "persistence" in only:
        growth = (after - before) / 1024 / 1024
        print(f"\ncatalog of {100_000 // scale:,} hydrated torrents: {catalog_bytes / 1024 / 1024:,.1f} MiB traced")
        print(
            f"RSS across {1_000_000 // scale:,} progress events over {10_000 // scale:,} torrents: "
            f"{before / 1024 / 1024:,.1f} MiB after warm-up, {after / 1024 / 1024:,.1f} MiB after ({growth:+.1f} MiB)"
        )
        print(f"worst GET /health while 200 clients stream events: {worst_health * 1000:,.1f} ms (target < 100 ms)")
    for note in notes:
        print(note)
    missed = [f for f in figures if not f.met]
    print(f"\n{len(figures) - len(missed)} of {len(figures)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
