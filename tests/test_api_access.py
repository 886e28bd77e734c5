"""Off loopback every endpoint but the liveness answer of /health needs a token; a read-only token only reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.api.server import ApiServer
from revaer_core.bus import EventBus
from revaer_core.cli.client import AccessRefused, DaemonClient
from tests.support.surfaces import problem, seed_jobs, seed_torrents

TOKEN = "write-token-for-tests"
READ = "read-token-for-tests"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - the point of the test

#: Every read route, as an operator would call it.
READS = ["/v1/torrents", "/v1/fsops/jobs", "/metrics", "/schema/openapi.json", "/v1/torrents/{id}", "/v1/events"]


def exposed_app(store: RuntimeStore, **more: Any) -> Any:
    return create_app(store, token=TOKEN, read_token=READ, bind_host=EVERYWHERE, bus=EventBus(), **more)


@pytest.fixture
def exposed(store: RuntimeStore) -> Iterator[TestClient[Any]]:
    with TestClient(exposed_app(store), base_url="http://revaer.lan:7080") as client:
        yield client


def reads(store: RuntimeStore) -> list[str]:
    torrent = seed_torrents(store, 1)[0]
    return [path.replace("{id}", str(torrent.id)) for path in READS if path != "/v1/events"]


def test_off_loopback_every_read_needs_a_token(exposed: TestClient[Any], store: RuntimeStore) -> None:
    for path in [*reads(store), "/v1/events"]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {READ}"}):
            refused = exposed.get(path, headers=headers)
            assert refused.status_code == 401, path
            problem(refused.json(), 401)
            assert "read_token" in refused.json()["detail"] and TOKEN not in refused.text
    for path in reads(store):
        for token in (TOKEN, READ):
            assert exposed.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200, path


def test_off_loopback_health_without_a_token_says_only_whether_it_lives(exposed: TestClient[Any]) -> None:
    bare = exposed.get("/health")
    assert bare.status_code == 200 and bare.json()["status"] == "ok"
    assert set(bare.json()) == {"status", "detail"} and "token" in bare.json()["detail"]
    full = exposed.get("/health", headers={"Authorization": f"Bearer {READ}"}).json()
    assert full["status"] == "ok" and "store" in full and "backend" in full


def test_the_read_only_token_cannot_write(exposed: TestClient[Any], store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    url = f"/v1/fsops/jobs/{jobs.failed}/retry"
    refused = exposed.post(url, headers={"Authorization": f"Bearer {READ}"})
    assert refused.status_code == 403
    problem(refused.json(), 403)
    assert "read-only" in refused.json()["detail"]
    assert store.get_job(jobs.failed).status == "failed"  # type: ignore[union-attr]
    assert exposed.post(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_metrics_public_opens_metrics_alone(store: RuntimeStore) -> None:
    with TestClient(exposed_app(store, metrics_public=True), base_url="http://revaer.lan:7080") as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/torrents").status_code == 401
        assert client.get("/schema/openapi.json").status_code == 401


def test_on_loopback_reads_stay_open_and_writes_need_the_token(store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    app = create_app(store, token=TOKEN, read_token=READ, bus=EventBus())
    with TestClient(app, base_url="http://127.0.0.1") as api:
        for path in reads(store):
            assert api.get(path).status_code == 200, path
        assert "store" in api.get("/health").json()
        assert api.post(f"/v1/fsops/jobs/{jobs.failed}/retry").status_code == 401
        assert (
            api.post(f"/v1/fsops/jobs/{jobs.failed}/retry", headers={"Authorization": f"Bearer {READ}"}).status_code
            == 403
        )


def test_the_cli_client_sends_its_token_and_says_when_it_is_read_only(store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    with ApiServer(exposed_app(store), host="127.0.0.1", port=0) as server:
        # the app was made for 0.0.0.0: it asks for a token on every route, as an exposed daemon would
        reader = DaemonClient("127.0.0.1", server.port, READ, token_source="REVAER_API_READ_TOKEN")
        assert reader.request("GET", "/v1/fsops/jobs").status == 200
        with pytest.raises(AccessRefused) as refused:
            reader.request("POST", f"/v1/fsops/jobs/{jobs.failed}/retry")
        assert "read-only" in str(refused.value) and READ not in str(refused.value)
        with pytest.raises(AccessRefused):
            DaemonClient("127.0.0.1", server.port, None, token_source="nowhere").request("GET", "/v1/torrents")
        writer = DaemonClient("127.0.0.1", server.port, TOKEN, token_source="[api] token")
        assert writer.request("POST", f"/v1/fsops/jobs/{jobs.failed}/retry").body["status"] == "pending"
