"""Start and stop with 2,000 and 10,000 torrents: ``revaer run`` against a bare libtorrent session and real clients.

Every client gets the same small complete torrents (one 4 KiB file each,
payload on disk). qBittorrent takes them first (``skip_checking``) and stops,
and ``revaer import`` brings its ``BT_backup`` into a fresh PostgreSQL schema;
a first ``revaer run`` (not timed) restores them and stops. Then, each
repeated and measured as a subprocess launched from here:

- restart: from launch until the client's API lists every torrent with a
  state (for Revaer: ``GET /v1/torrents``, page after page, each with a state;
  the daemon answers only once every restored torrent is in its catalog);
- clean stop: from SIGTERM (qBittorrent: ``app/shutdown``) until the process
  has exited;
- peak RSS of the process (``VmHWM``), read just before the stop;
- for Revaer, the empty daemon's start: a schema with no torrents;
- for Revaer, its own log line of each measured stop, which says how long
  each part took (API, engine, FsOps, last flush, store).

The baseline, the limit of what any libtorrent client can do, is a bare
libtorrent session in a subprocess of its own: import libtorrent, read the same
resume data Revaer stores (written out to files), ``async_add_torrent`` all of
it, and wait for every ``add_torrent_alert``. qBittorrent and Transmission run
when installed (``qbittorrent-nox``, ``transmission-daemon``), on 127.0.0.1.

``python benchmarks/startstop.py [--counts 2000,10000] [--quick] [--runs 3]``;
``nox -s bench`` runs it through ``benchmarks/persistence.py`` (``-- --only startstop``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import psycopg
from persistence import Figure
from psycopg import sql

from revaer_core.testing.clients import CLIENT_WAIT_S, LocalTorrent, Qbittorrent, Transmission, free_port, tiny_torrents

#: How long one restart may take before the bench gives up on it.
WAIT_S = 600.0
POLL_S = 0.02
#: How the daemon's log line of a clean stop begins; the rest says how long each part took.
_STOPPED = "revaer stopped cleanly in "


@attrs.frozen
class Run:
    """One client's figures at one count: each a list over the repeats."""

    client: str
    restart: tuple[float, ...]
    stop: tuple[float, ...]
    rss_mib: float

    def row(self, baseline: float | None) -> str:
        best = min(self.restart)
        ratio = f"{best / baseline:>6.2f}x" if baseline else f"{'':>7}"
        return f"{self.client:<22}{_span(self.restart):>15} {ratio}{_span(self.stop):>15}{self.rss_mib:>12.0f}"


def _span(values: Sequence[float]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f}-{high:.2f}"


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - a loopback URL we built
            return json.loads(answer.read())
    except (urllib.error.URLError, ConnectionError):
        return None


# -- Revaer ----------------------------------------------------------------------------------------------------------


@attrs.define
class Revaer:
    """``revaer run`` on a PostgreSQL schema of its own, its API on a fixed loopback port."""

    root: Path
    url: str
    downloads: Path
    schema: str = attrs.field(factory=lambda: f"bench_startstop_{uuid.uuid4().hex[:8]}")
    port: int = attrs.field(factory=free_port)

    @property
    def config(self) -> Path:
        path = self.root / "revaer.toml"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "[runtime]\n"
                'backend = "postgres"\n'
                f"data_dir = {json.dumps(str(self.root / 'data'))}\n\n"
                "[runtime.postgres]\n"
                f"dsn = {json.dumps(self.url)}\n"
                f"schema = {json.dumps(self.schema)}\n\n"
                "[engine]\n"
                f"download_dir = {json.dumps(str(self.downloads))}\n"
                'listen_interfaces = "127.0.0.1:0"\n'
                "enable_dht = false\nenable_lsd = false\nenable_upnp = false\nenable_natpmp = false\n\n"
                "[api]\n"
                'host = "127.0.0.1"\n'
                f"port = {self.port}\n"
            )
        return path

    def cli(self, *args: str) -> None:
        subprocess.run([*_revaer(), "--config", str(self.config), *args], check=True, stdout=subprocess.DEVNULL)

    def launch(self) -> subprocess.Popen[bytes]:
        log = (self.root / "daemon.log").open("ab")
        return subprocess.Popen(
            [*_revaer(), "--config", str(self.config), "run"], stdout=log, stderr=subprocess.STDOUT, env=_env()
        )

    def listed(self) -> int:
        """How many torrents the API lists with a state (-1 while it does not answer)."""
        count, cursor = 0, None
        while True:
            query = "limit=500" + (f"&cursor={cursor}" if cursor else "")
            page = _get_json(f"http://127.0.0.1:{self.port}/v1/torrents?{query}")
            if page is None:
                return -1
            count += sum(1 for t in page["items"] if t.get("state"))
            cursor = page.get("next_cursor")
            if not cursor:
                return count

    def restart(self, count: int) -> tuple[float, float, float]:
        """One start until ``count`` are listed, then a clean stop: (start s, stop s, peak RSS MiB)."""
        started = time.perf_counter()
        process = self.launch()
        try:
            wait_until(lambda: self.listed() >= count, f"revaer run to list {count} torrents", process)
            up = time.perf_counter() - started
            rss = peak_rss_mib(process.pid)
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            if process.wait(CLIENT_WAIT_S) != 0:
                raise RuntimeError(f"revaer run did not stop cleanly; see {self.root / 'daemon.log'}")
            return up, time.perf_counter() - stopping, rss
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    def stop_reports(self) -> list[str]:
        """The daemon's own line for each clean stop so far, oldest first: where each stop's time went."""
        log = self.root / "daemon.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line[line.index(_STOPPED) :] for line in lines if _STOPPED in line]

    def resume_files(self, into: Path) -> int:
        """Write the resume data the store holds, one file a torrent, for the bare session."""
        into.mkdir(parents=True, exist_ok=True)
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                sql.SQL("SELECT id, resume_data FROM {} WHERE resume_data IS NOT NULL").format(
                    sql.Identifier(self.schema, "torrents")
                )
            ).fetchall()
        for ident, data in rows:
            (into / f"{ident}.resume").write_bytes(bytes(data))
        return len(rows)

    def drop(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))


def _revaer() -> list[str]:
    script = shutil.which("revaer", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "revaer_core"]


def _env() -> dict[str, str]:
    """Our environment without Revaer's variables, with bytecode caching allowed: an installed product has its .pyc."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REVAER_") and k != "PYTHONDONTWRITEBYTECODE"}


# -- the bare libtorrent session (the baseline) --------------------------------------------------------------------

_BARE = """
import os, sys, time
import libtorrent as lt
folder, ready = sys.argv[1], sys.argv[2]
session = lt.session(lt.session_params({
    "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
    "enable_natpmp": False, "alert_queue_size": 100000,
    "alert_mask": lt.alert_category.status | lt.alert_category.error | lt.alert_category.storage}))
names = os.listdir(folder)
for name in names:
    with open(os.path.join(folder, name), "rb") as f:
        session.async_add_torrent(lt.read_resume_data(f.read()))
added = 0
while added < len(names):
    session.wait_for_alert(100)
    added += sum(isinstance(a, lt.add_torrent_alert) for a in session.pop_alerts())
status = {s.state for s in (h.status() for h in session.get_torrents())}
with open("/proc/self/status") as f:
    rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
open(ready, "w").write(f"{len(names)} {rss}")
sys.stdin.read()
"""


def bare_session(resume: Path, count: int, runs: int) -> Run:
    """A bare session in a subprocess: launch until every resume file is added; stop is its exit."""
    starts, stops, rss = [], [], 0.0
    for n in range(runs):
        ready = resume.parent / f"bare-ready-{n}"
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _BARE, str(resume), str(ready)], stdin=subprocess.PIPE, env=_env()
        )
        wait_until(ready.exists, "the bare session to add every torrent", process)
        while not ready.read_text():
            time.sleep(POLL_S)
        starts.append(time.perf_counter() - started)
        listed, peak = ready.read_text().split()
        if int(listed) != count:
            raise RuntimeError(f"the bare session added {listed} of {count}")
        rss = max(rss, float(peak))
        stopping = time.perf_counter()
        assert process.stdin is not None
        process.stdin.close()
        process.wait(CLIENT_WAIT_S)
        stops.append(time.perf_counter() - stopping)
    return Run("bare libtorrent", tuple(starts), tuple(stops), rss)


# -- the clients -----------------------------------------------------------------------------------------------------


def client_runs(name: str, client: Qbittorrent | Transmission, count: int, runs: int) -> Run:
    """``runs`` restarts of a stopped ``client`` that holds ``count`` torrents: each start until it lists them all."""
    starts, stops, rss = [], [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        client.start(wait=False)
        wait_until(lambda: client.listed() >= count, f"{name} to list {count} torrents", client.process)
        starts.append(time.perf_counter() - started)
        assert client.process is not None
        rss = max(rss, peak_rss_mib(client.process.pid))
        stopping = time.perf_counter()
        client.stop()
        stops.append(time.perf_counter() - stopping)
    return Run(name, tuple(starts), tuple(stops), rss)


def transmission_runs(root: Path, torrents: Sequence[LocalTorrent], runs: int) -> Run:
    client = Transmission(root / "transmission", torrents[0].save_path)
    client.start()
    try:
        for t in torrents:
            client.add(t)
        client.settle(len(torrents), timeout=WAIT_S)
    finally:
        client.stop()
    return client_runs("Transmission", client, len(torrents), runs)


# -- the whole run ---------------------------------------------------------------------------------------------------


def revaer_runs(root: Path, url: str, folder: Path, downloads: Path, count: int, runs: int) -> tuple[Run, Path]:
    revaer = Revaer(root / "revaer", url, downloads)
    try:
        revaer.cli("runtime", "migrate")
        revaer.cli("import", "qbittorrent", str(folder))
        revaer.restart(count)  # the first start after the import: not timed
        figures = [revaer.restart(count) for _ in range(runs)]
        for said in revaer.stop_reports()[-runs:]:
            print(f"Revaer at {count:,} torrents: {said}")
        resume = root / "resume"
        written = revaer.resume_files(resume)
        if written != count:
            raise RuntimeError(f"the store holds resume data of {written} of {count} torrents")
    finally:
        revaer.drop()
    return Run("Revaer", tuple(f[0] for f in figures), tuple(f[1] for f in figures), max(f[2] for f in figures)), resume


def empty_daemon(root: Path, url: str, runs: int) -> Run:
    revaer = Revaer(root / "revaer-empty", url, root / "empty-downloads")
    try:
        revaer.cli("runtime", "migrate")
        figures = [revaer.restart(0) for _ in range(runs + 1)][1:]  # the first writes the .pyc files, if any
    finally:
        revaer.drop()
    return Run("Revaer, no torrents", tuple(f[0] for f in figures), tuple(f[1] for f in figures),
               max(f[2] for f in figures))  # fmt: skip


def measure(url: str, count: int, runs: int, clients: bool = True, transmission: bool = True) -> list[Run]:
    """Every client's figures at ``count`` torrents (bare session first, the baseline)."""
    with tempfile.TemporaryDirectory(prefix="revaer-bench-startstop-") as tmp:
        root = Path(tmp)
        downloads = root / "downloads"
        torrents = tiny_torrents(downloads, count)
        qbt = Qbittorrent(root / "qbt")
        qbt.take(torrents, timeout=WAIT_S)
        ours, resume = revaer_runs(root, url, qbt.backup, downloads, count, runs)
        measured = [bare_session(resume, count, runs), ours]
        if clients:
            measured.append(client_runs("qBittorrent", qbt, count, runs))
            if transmission and shutil.which("transmission-daemon"):
                try:
                    measured.append(transmission_runs(root, torrents, runs))
                except (AssertionError, RuntimeError) as exc:  # it verifies every torrent as it takes it: slow
                    print(f"Transmission left out at {count:,} torrents: {exc}")
        return measured


def report(count: int, measured: Sequence[Run]) -> None:
    baseline = min(measured[0].restart)
    print(f"\n{count:,} torrents (best-of ratios against the bare libtorrent session)")
    print(f"{'client':<22}{'restart (s)':>15} {'ratio':>7}{'clean stop (s)':>15}{'peak RSS MiB':>12}")
    for run in measured:
        print(run.row(baseline))


def counts_for(*, quick: bool) -> list[int]:
    """The torrent counts measured: the issue's 2,000 and 10,000, or 200 and 1,000 for a smoke run."""
    return [200, 1000] if quick else [2000, 10000]


def run_figures(url: str, counts: Sequence[int], runs: int, *, transmission: bool = True) -> list[Figure]:
    """Measure and print the table for each count and the empty daemon's start; the targets as figures.

    Targets: a restart no slower than qBittorrent's, a peak RSS no larger, an
    empty daemon up in under 1 s (each against a baseline of the same run).
    """
    if not shutil.which("qbittorrent-nox"):
        print("startstop: qbittorrent-nox is not installed (apt-get install qbittorrent-nox); the torrents are made "
              "through it, so nothing was measured")  # fmt: skip
        return []
    with tempfile.TemporaryDirectory(prefix="revaer-bench-empty-") as tmp:
        empty = empty_daemon(Path(tmp), url, runs)
    print(f"empty daemon: start {_span(empty.restart)} s (target < 1 s), stop {_span(empty.stop)} s, "
          f"peak RSS {empty.rss_mib:.0f} MiB")  # fmt: skip
    best_empty = min(empty.restart)
    figures = [Figure("empty daemon start", best_empty, "s", 1.0, "target", best_empty, "< 1.0", best_empty < 1.0)]
    for count in counts:
        measured = measure(url, count, runs, transmission=transmission)
        report(count, measured)
        ours = next(r for r in measured if r.client == "Revaer")
        theirs = next((r for r in measured if r.client == "qBittorrent"), None)
        if theirs is None:
            continue
        ratio = min(ours.restart) / min(theirs.restart)
        figures.append(Figure(f"restart, {count:,} torrents", min(ours.restart), "s", min(theirs.restart),
                              "qBittorrent", ratio, "<= 1.0", ratio <= 1.0))  # fmt: skip
        rss = ours.rss_mib / theirs.rss_mib
        figures.append(Figure(f"peak RSS, {count:,} torrents", ours.rss_mib, "MiB", theirs.rss_mib, "qBittorrent",
                              rss, "<= 1.0", rss <= 1.0))  # fmt: skip
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2000,10000", help="torrent counts, comma-separated (default 2000,10000)")
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 torrents, one run each")
    parser.add_argument("--runs", type=int, default=3, help="restarts measured per client (default 3)")
    parser.add_argument("--no-transmission", action="store_true", help="leave Transmission out (it verifies each add)")
    args = parser.parse_args(argv)
    url = os.environ.get("REVAER_BENCH_DATABASE_URL") or os.environ.get("REVAER_TEST_DATABASE_URL")
    if not url:
        parser.error("set REVAER_BENCH_DATABASE_URL (or REVAER_TEST_DATABASE_URL) to a PostgreSQL database")
    counts = counts_for(quick=True) if args.quick else [int(c) for c in args.counts.split(",")]
    run_figures(url, counts, 1 if args.quick else args.runs, transmission=not args.no_transmission)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
