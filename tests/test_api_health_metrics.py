"""GET /health follows the HealthBoard and the store; GET /metrics renders the counters and FsOps job gauge.

HEAD on both answers over a real server (uvicorn): the headers of a GET, no body.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import threading
from pathlib import Path

import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.api.probe import RECENT_S, StoreProbe
from revaer_core.api.server import ApiServer
from revaer_core.bus import EventBus
from revaer_core.contract import samples
from revaer_core.health import RUNTIME_STORE, HealthBoard, StoreHealth
from revaer_core.metrics import Metrics
from revaer_core.orchestrator import StoreWriter, TorrentOrchestrator
from revaer_core.plugins import implemented_hooks
from revaer_core.query import MAX_PAGE_SIZE
from revaer_core.testing.jobs import job_started
from revaer_core.testing.waiting import wait_for
from revaer_runtime_memory import MemoryStore
from tests.support.stores import SECRET, FaultyStore
from tests.support.surfaces import problem, seed_jobs, seed_torrents

#: Seconds within which /health shows a store going down or coming back: an answer up to RECENT_S old,
#: then the probe the request asked for, with room for a loaded machine.
QUICKLY_S = RECENT_S + 2.0


def sample(text: str, series: str) -> float | None:
    """The value of one series line (``name`` or ``name{labels}``) in Prometheus text, if present."""
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


def test_health_turns_degraded_with_the_board_and_back(store: RuntimeStore) -> None:
    board = HealthBoard()
    with TestClient(create_app(store, health=board), base_url="http://127.0.0.1") as api:
        ok = api.get("/health").json()
        assert ok["status"] == "ok" and ok["degraded"] == {} and ok["store"]["ok"] is True
        assert ok["backend"] == store.backend

        board.degrade("engine", "libtorrent session lost")
        board.degrade(RUNTIME_STORE, "flush failed")
        degraded = api.get("/health")
        assert degraded.status_code == 200
        assert degraded.json()["status"] == "degraded"
        assert degraded.json()["degraded"] == {"engine": "libtorrent session lost", RUNTIME_STORE: "flush failed"}

        board.recover("engine")
        board.recover(RUNTIME_STORE)
        assert api.get("/health").json()["status"] == "ok"


def test_health_reports_a_down_store_and_its_recovery(faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    seed_torrents(store, 2)
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        assert api.get("/health").json()["status"] == "ok"
        plugin.down = True
        # an answer may come from a probe up to RECENT_S old; the one that request asked for finds the outage
        wait_for(lambda: api.get("/health").json()["status"] == "degraded", "/health to report the outage", QUICKLY_S)
        body = api.get("/health").json()
        assert body["status"] == "degraded"
        assert body["store"]["ok"] is False
        assert RUNTIME_STORE in body["degraded"]
        assert SECRET not in str(body) and "***" in body["store"]["facts"]["dsn"]

        listing = api.get("/v1/torrents")
        assert listing.status_code == 503
        problem(listing.json(), 503)
        assert SECRET not in listing.text and "incident" in listing.json()["detail"]
        assert listing.json()["incident"] in listing.json()["detail"]
        assert api.get("/v1/fsops/jobs").status_code == 503

        plugin.down = False
        wait_for(lambda: api.get("/health").json()["status"] == "ok", "/health to report the recovery", QUICKLY_S)
        assert len(api.get("/v1/torrents").json()["items"]) == 2


def test_health_answers_from_a_recent_probe_at_once_and_from_a_fresh_one_otherwise() -> None:
    """A probe younger than ``recent`` is the answer, even while the next one hangs; an older one is not."""
    found = [StoreHealth(ok=True, detail="first")]
    gate = threading.Event()
    gate.set()

    def check() -> StoreHealth:
        gate.wait()
        return found[0]

    probe = StoreProbe(check)

    async def reports() -> list[StoreHealth]:
        first = await probe.report(wait=30)  # nothing probed yet: waits for the first probe
        found[0] = StoreHealth(ok=False, detail="second")
        gate.clear()
        recent = await probe.report(wait=30, recent=60)  # asks for a probe, which hangs, and answers from the first
        gate.set()
        fresh = await probe.report(wait=30, recent=0)  # the first is too old: waits for a probe it asked for
        return [first, recent, fresh]

    try:
        assert [report.detail for report in asyncio.run(reports())] == ["first", "first", "second"]
    finally:
        gate.set()
        probe.close()


def test_metrics_counters_move_and_jobs_are_counted_by_status(store: RuntimeStore) -> None:
    metrics = Metrics()
    TorrentOrchestrator(EventBus(), store, metrics=metrics)  # not started: it declares its counters and writer's
    jobs = seed_jobs(store)
    with TestClient(create_app(store, metrics=metrics, token="t"), base_url="http://127.0.0.1") as api:
        api.headers["Authorization"] = "Bearer t"
        first = api.get("/metrics")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert sample(first.text, "revaer_events_handled_total") == 0
        assert sample(first.text, "revaer_last_flush_duration_seconds") == 0
        assert sample(first.text, "revaer_flush_duration_seconds_total") == 0
        assert sample(first.text, 'revaer_fsops_jobs{status="failed"}') == 1
        assert sample(first.text, 'revaer_fsops_jobs{status="pending"}') == 0
        assert "# TYPE revaer_fsops_jobs gauge" in first.text

        metrics.inc("revaer_events_handled_total", 3)
        metrics.inc("revaer_store_errors_total")
        writer = StoreWriter(store, metrics=metrics)  # not started: what it is given waits in its buffer
        for n in range(7):
            writer.upsert(samples.status(100 + n))
        api.post(f"/v1/fsops/jobs/{jobs.failed}/retry")
        second = api.get("/metrics").text
        assert sample(second, "revaer_events_handled_total") == 3
        assert sample(second, "revaer_store_errors_total") == 1
        assert sample(second, "revaer_buffer_depth") == 7
        assert sample(second, 'revaer_fsops_jobs{status="failed"}') == 0
        assert sample(second, 'revaer_fsops_jobs{status="pending"}') == 1


def test_metrics_still_answer_while_the_store_is_down(faulty: tuple[RuntimeStore, FaultyStore]) -> None:
    store, plugin = faulty
    seed_jobs(store)
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        plugin.down = True
        text = api.get("/metrics").text
        assert "# TYPE revaer_fsops_jobs gauge" in text
        assert "revaer_fsops_jobs{" not in text  # no stale numbers while the store cannot be read
        plugin.down = False
        assert sample(api.get("/metrics").text, 'revaer_fsops_jobs{status="moved"}') == 1


class Uncounted(MemoryStore):
    """The memory store without its optional ``count_jobs``: the facade then pages through ``list_jobs``."""

    count_jobs = None  # type: ignore[assignment]  # pluggy registers no hook for an attribute that is not one


@pytest.mark.parametrize("plugin", [MemoryStore, Uncounted], ids=["count_jobs", "list_jobs-fallback"])
def test_metrics_counts_more_jobs_than_one_page(plugin: type[MemoryStore], tmp_path: Path) -> None:
    store = RuntimeStore.open(plugin(), name="memory", data_dir=tmp_path)
    assert ("count_jobs" in implemented_hooks(store.plugin)) is (plugin is MemoryStore)
    count = MAX_PAGE_SIZE + 3
    for n in range(count):
        job_started(store, samples.status(1000 + n).id, f"/dl/{n}")
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        assert sample(api.get("/metrics").text, 'revaer_fsops_jobs{status="moving"}') == count


def test_metrics_from_the_daemon_are_rendered(store: RuntimeStore) -> None:
    metrics = Metrics()
    StoreWriter(store, metrics=metrics)
    metrics.inc("revaer_rows_flushed_total", 42)
    with TestClient(create_app(store, metrics=metrics), base_url="http://127.0.0.1") as api:
        assert sample(api.get("/metrics").text, "revaer_rows_flushed_total") == 42


def test_the_api_alone_shows_no_daemon_counters(store: RuntimeStore) -> None:
    """``revaer api`` moves no counter, so it shows none (a zero would read as "nothing happened")."""
    seed_jobs(store)
    with TestClient(create_app(store), base_url="http://127.0.0.1") as api:
        text = api.get("/metrics").text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert names == {"revaer_fsops_jobs"}
    assert sample(text, 'revaer_fsops_jobs{status="moved"}') == 1


def head(server: ApiServer, path: str, token: str | None = None) -> http.client.HTTPResponse:
    """A HEAD request over a socket, read as a client reads one (http.client knows HEAD has no body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("HEAD", path, headers={} if token is None else {"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_head_on_health_and_metrics_answers_with_a_get_s_headers_and_no_body(store: RuntimeStore) -> None:
    with ApiServer(create_app(store), host="127.0.0.1", port=0) as server:
        for path, kind in (("/health", "application/json"), ("/metrics", "text/plain; version=0.0.4")):
            answer = head(server, path)
            assert answer.status == 200, path
            assert answer.headers["content-type"].startswith(kind), path
            assert answer.headers.get("content-length") in (None, "0"), path
        # the connection stayed in step: a GET on a fresh one still answers with its body
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/health")
        assert b'"status"' in connection.getresponse().read()
        connection.close()


def test_head_follows_the_access_rules_of_get(store: RuntimeStore) -> None:
    """Off loopback: HEAD /health answers without a token (liveness), HEAD /metrics wants one, as GET does."""
    app = create_app(store, token="t", bind_host="0.0.0.0")  # noqa: S104 - the rule under test; served on loopback
    with ApiServer(app, host="127.0.0.1", port=0) as server:
        assert head(server, "/health").status == 200
        assert head(server, "/metrics").status == 401
        assert head(server, "/metrics", token="t").status == 200
