"""The event rate with 200 event-stream clients (half idle, half reading slowly) against none.

The daemon's event path (bus and orchestrator over the memory store) is
driven as fast as one thread can publish, with the API serving on the same
bus; the ratio is events per second with the clients over events per second
without them, measured side by side. ``/health`` is timed all along.
"""

from __future__ import annotations

import socket
import statistics
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
    sent, n = 0, 0
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(100):
            n += 1
            bus.publish(ProgressUpdated(torrent_id=ids[n % TORRENTS], downloaded=n, total=10**12))
        sent += 100
    return sent / (time.perf_counter() - started)


@contextmanager
def clients(port: int, idle: int, slow: int) -> Iterator[None]:
    """``idle`` streams that never read and ``slow`` ones that read 512 bytes every 200 ms."""
    stop = threading.Event()
    sockets: list[socket.socket] = []
    request = f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    for _ in range(idle + slow):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(request)
        sockets.append(s)

    def read_slowly(s: socket.socket) -> None:
        s.settimeout(0.5)
        while not stop.is_set():
            with suppress(OSError):
                s.recv(512)
            stop.wait(0.2)

    readers = [threading.Thread(target=read_slowly, args=(s,), daemon=True) for s in sockets[idle:]]
    for reader in readers:
        reader.start()
    try:
        yield
    finally:
        stop.set()
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
        with ApiServer(app, host="127.0.0.1", port=0, grace=1) as server, clients(server.port, idle, slow):
            time.sleep(0.5)  # every client connected and subscribed
            stop, worst, timings = threading.Event(), [0.0, 0.0], list[float]()
            timer = threading.Thread(target=health_worst, args=(server.url, stop, worst, timings), daemon=True)
            timer.start()
            rate = publish_for(bus, SECONDS)
            pending = time.perf_counter() - worst[1] if worst[1] else 0.0  # a request the load kept waiting
            stop.set()
            timer.join(5)
            return Run(rate, max(worst[0], pending), timings[:])
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
        f"median ratio {median:.2f} (target >= 0.8); worst /health with clients, median of rounds "
        f"{statistics.median(worst) * 1000:.1f} ms (target < 100 ms); /health with clients over "
        f"{len(timings)} requests: p50 {percentile(timings, 50) * 1000:.1f} ms, "
        f"p99 {percentile(timings, 99) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
