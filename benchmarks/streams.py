"""The event rate with 200 event-stream clients (half idle, half reading slowly) against none.

The daemon's event path (bus and orchestrator over the memory store) is
driven as fast as one thread can publish, with the API serving on the same
bus; the ratio is events per second with the clients over events per second
without them, measured side by side. ``/health`` is timed all along. The
clients, and the ``/health`` timer, run in a process of their own; the
objects built before the timed part are frozen out of the garbage
collector's way, as the daemon freezes what its start built.
"""

from __future__ import annotations

import gc
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import httpx

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.api.server import ApiServer
from revaer_core.bus import EventBus
from revaer_core.events import ProgressUpdated, TorrentAdded
from revaer_core.orchestrator import TorrentOrchestrator
from revaer_runtime_memory import MemoryStore

SECONDS = 3.0
TORRENTS = 1000


def publish_for(bus: EventBus, seconds: float) -> float:
    """Events per second one thread gets through the bus (and the orchestrator folding them)."""
    ids = [uuid.UUID(int=n + 1) for n in range(TORRENTS)]
    for torrent_id in ids:
        bus.publish(TorrentAdded(torrent_id=torrent_id, name=str(torrent_id)))
    gc.freeze()  # as the daemon does once started: what the start built is out of the collector's way
    try:
        sent, n = 0, 0
        end = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < end:
            for _ in range(100):
                n += 1
                bus.publish(ProgressUpdated(torrent_id=ids[n % TORRENTS], downloaded=n, total=10**12))
            sent += 100
        return sent / (time.perf_counter() - started)
    finally:
        gc.unfreeze()


@contextmanager
def clients(port: int, idle: int, slow: int) -> Iterator[subprocess.Popen[str]]:
    """``idle`` streams that never read and ``slow`` ones that read 512 bytes every 200 ms, in a process of their own.

    Real clients live in other processes. In the daemon's process their
    threads (and the ``/health`` timer's) would compete for its GIL, each wake-up
    of theirs taking it from the publishing thread, and the bench would
    measure its own clients: 100 slow readers as threads cost that thread about
    15 % of its rate with no API involved at all.
    """
    command = [sys.executable, __file__, "--clients", str(port), str(idle), str(slow)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            if process.stdout.readline().strip() != "connected":
                raise RuntimeError("the bench's clients did not connect")
            yield process
        finally:
            with suppress(OSError):
                process.stdin.close()
            process.wait(10)


def serve_clients(port: int, idle: int, slow: int) -> None:
    """The client process: open the streams, read the slow ones, and time ``/health`` between "time" and "stop".

    Speaks over stdin and stdout: prints "connected" once every stream is
    open, then on "time" starts timing ``/health`` every 100 ms, and on "stop"
    prints the timings as JSON: ``{"worst": s, "timings": [s, ...]}``, where
    ``worst`` counts a request still unanswered at the stop.
    """
    request = f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    sockets: list[socket.socket] = []
    for _ in range(idle + slow):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(request)
        s.setblocking(False)
        sockets.append(s)
    stop = threading.Event()

    def read_slowly() -> None:
        while not stop.wait(0.2):
            for s in sockets[idle:]:
                with suppress(OSError):
                    s.recv(512)

    reader = threading.Thread(target=read_slowly, daemon=True)
    reader.start()
    print("connected", flush=True)
    if sys.stdin.readline().strip() != "time":
        return
    worst, timings = [0.0, 0.0], list[float]()
    timer = threading.Thread(target=health_worst, args=(f"http://127.0.0.1:{port}", stop, worst, timings), daemon=True)
    timer.start()
    sys.stdin.readline()  # "stop", or the end of the input
    pending = time.perf_counter() - worst[1] if worst[1] else 0.0  # a request the load kept waiting
    stop.set()
    timer.join(5)
    print(json.dumps({"worst": max(worst[0], pending), "timings": timings[:]}), flush=True)
    for s in sockets:
        s.close()


def health_worst(url: str, stop: threading.Event, worst: list[float], timings: list[float]) -> None:
    """Time ``/health`` every 100 ms into ``timings``; ``worst[1]`` holds the start of a request still unanswered."""
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            worst[1] = started = time.perf_counter()
            client.get("/health")
            worst[1] = 0.0
            timings.append(time.perf_counter() - started)
            worst[0] = max(worst[0], timings[-1])
            stop.wait(0.1)


class Run(NamedTuple):
    rate: float  #: events per second
    worst: float  #: seconds of the slowest /health, or of one still unanswered at the end
    timings: list[float]  #: seconds of each /health answered


def measure(idle: int, slow: int) -> Run:
    """The event rate and the /health timings with that many clients."""
    store = RuntimeStore.open(MemoryStore(), name="memory", data_dir=Path("."))
    bus = EventBus(capacity=4096)
    orchestrator = TorrentOrchestrator(bus, store)
    orchestrator.start()
    app = create_app(store, bus=bus, catalog=orchestrator.catalog)
    try:
        with ApiServer(app, host="127.0.0.1", port=0, grace=1) as server, clients(server.port, idle, slow) as process:
            assert process.stdin is not None and process.stdout is not None
            time.sleep(0.5)  # every stream subscribed
            process.stdin.write("time\n")
            process.stdin.flush()
            rate = publish_for(bus, SECONDS)
            process.stdin.write("stop\n")
            process.stdin.flush()
            found = json.loads(process.stdout.readline())
            return Run(rate, found["worst"], found["timings"])
    finally:
        orchestrator.close()
        store.close()


#: Rounds of (no clients, 200 clients), alternated so that a load change on the machine hits both alike.
ROUNDS = 3


def percentile(timings: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``timings``."""
    ranked = sorted(timings)
    return ranked[min(len(ranked) - 1, max(0, round(p / 100 * len(ranked)) - 1))]


def main() -> None:
    ratios, worst, timings = [], [], []
    for n in range(1, ROUNDS + 1):
        alone = measure(0, 0)
        crowded = measure(100, 100)
        ratios.append(crowded.rate / alone.rate)
        worst.append(crowded.worst)
        timings += crowded.timings
        print(
            f"round {n}: events/s without clients {alone.rate:,.0f} (worst /health {alone.worst * 1000:.1f} ms), "
            f"with 100 idle + 100 slow clients {crowded.rate:,.0f} (worst /health {crowded.worst * 1000:.1f} ms), "
            f"ratio {ratios[-1]:.2f}"
        )
    median = statistics.median(ratios)
    print(
        f"median ratio {median:.2f} (target >= 0.8); worst /health with clients {max(worst) * 1000:.1f} ms "
        f"(target < 100 ms; median of the rounds' worst {statistics.median(worst) * 1000:.1f} ms); /health with "
        f"clients over {len(timings)} requests: p50 {percentile(timings, 50) * 1000:.1f} ms, "
        f"p99 {percentile(timings, 99) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--clients"]:
        serve_clients(*(int(arg) for arg in sys.argv[2:5]))
    else:
        main()
