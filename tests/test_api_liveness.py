"""The API stays answerable: ``/health`` within a second while the store hangs, and streams that go quietly."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from revaer_core import RuntimeStore
from revaer_core.api.app import STREAMS_STATE, create_app
from revaer_core.api.server import ApiServer
from revaer_core.api.stream import StreamHub
from revaer_core.bus import EventBus
from revaer_core.events import ProgressUpdated, TorrentAdded
from revaer_core.testing.process import Daemons, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import PrivateCluster, pg_options
from tests.support.clients import free_port


@pytest.mark.postgres
@pytest.mark.slow
def test_health_answers_within_a_second_while_the_store_server_is_frozen(
    private_cluster: PrivateCluster, tmp_path: Path
) -> None:
    options = pg_options(private_cluster.url, "t_health", connect_timeout_s=2, statement_timeout_ms=2000)
    store = RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir=tmp_path)
    try:
        with (
            ApiServer(create_app(store), host="127.0.0.1", port=0, grace=1) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            assert client.get("/health").json()["status"] == "ok"
            private_cluster.freeze()
            try:
                timings, bodies = [], []
                for _ in range(8):
                    started = time.perf_counter()
                    response = client.get("/health")
                    timings.append(time.perf_counter() - started)
                    bodies.append(response.json())
                    time.sleep(0.3)
            finally:
                private_cluster.thaw()
            assert max(timings) < 1.0, timings
            assert bodies[-1]["status"] == "degraded"
            assert "has not answered a health check" in bodies[-1]["degraded"]["runtime_store"]
            wait_for(lambda: client.get("/health").json()["status"] == "ok", "health to recover after the thaw")
    finally:
        store.close()


def test_clients_that_vanish_mid_stream_free_their_slots_without_a_warning_flood(
    store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(capacity=4096)
    app = create_app(store, bus=bus, heartbeat=0.2)
    request = b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    stop = threading.Event()

    def publish() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            bus.publish(ProgressUpdated(torrent_id=uuid.UUID(int=n % 50 + 1), downloaded=n, total=10**9))
            if n % 200 == 0:
                time.sleep(0.001)

    caplog.set_level(logging.WARNING)
    with ApiServer(app, host="127.0.0.1", port=0, grace=1) as server:
        for n in range(50):
            bus.publish(TorrentAdded(torrent_id=uuid.UUID(int=n + 1), name=f"t{n}"))
        clients = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(request)
            clients.append(s)
        hub: StreamHub = app.state[STREAMS_STATE]
        wait_for(lambda: hub.open_streams == 20, "every stream to start")
        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            time.sleep(0.5)
            for s in clients:  # gone at once, with a reset: the next write to each fails
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            # noticed on the next write (no timeout to wait out): well within 5 s, on a loaded machine too
            wait_for(lambda: hub.open_streams == 0, "the streams to notice", timeout=5)
            time.sleep(0.5)  # events keep coming: nothing may be written to the dead transports
        finally:
            stop.set()
            publisher.join(5)
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/health").status_code == 200
    floods = [r for r in caplog.records if "socket.send() raised exception" in r.getMessage()]
    assert floods == []


@pytest.mark.slow
def test_revaer_run_stops_cleanly_with_idle_and_reading_streams_open(tmp_path: Path, daemons: Daemons) -> None:
    """SIGTERM with 100 streams open (half never read): exit 0, every stream ended at once, no warning or traceback."""
    config = write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "memory", "data_dir": str(tmp_path / "data")},
            "engine": {"download_dir": str(tmp_path / "data" / "downloads")},
            "api": {"port": free_port()},
        },
    )
    daemon = daemons("--sim-torrents", "20", "--sim-steps", "100000", config=config)
    daemon.wait_running()
    port = int(daemon.api_url.rsplit(":", 1)[1])
    request = f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    streams = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(request)
        streams.append(s)
    try:
        for s in streams[:50]:  # the reading half: each has its first events
            s.settimeout(10)
            received = b""
            while b"event:" not in received:
                received += s.recv(4096)
        time.sleep(1)  # the idle half's buffers fill while the engine keeps publishing
        assert daemon.terminate(timeout=15) == 0, daemon.stderr
    finally:
        for s in streams:
            s.close()
    assert "socket.send() raised exception" not in daemon.stderr
    assert "stopped cleanly" in daemon.stderr
    # every stream ended as the API stopped: none waited out the grace period to be cancelled with a traceback
    assert "grace period" not in daemon.stderr, daemon.stderr[-3000:]
    assert "Exception in ASGI application" not in daemon.stderr, daemon.stderr[-3000:]
