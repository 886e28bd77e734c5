"""Binding, the bearer token on writes, cross-site and DNS-rebinding refusals, and no secret in any answer."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore
from revaer_core.api.app import create_app
from revaer_core.errors import ConfigError
from revaer_core.preflight import is_loopback
from tests.support.surfaces import problem, seed_jobs

TOKEN = "t0ken-that-must-not-leak"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - what these tests check is refused or guarded


@pytest.mark.parametrize("host", [EVERYWHERE, "::", "192.168.1.10", "revaer.example.org"])
def test_listening_off_loopback_without_a_token_is_refused(store: RuntimeStore, host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(store, bind_host=host)
    assert caught.value.key == "api.token"
    assert host in str(caught.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (EVERYWHERE, False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.fixture
def exposed(store: RuntimeStore) -> Any:
    with TestClient(create_app(store, token=TOKEN, bind_host=EVERYWHERE), base_url="http://revaer.lan:7080") as client:
        yield client


def test_off_loopback_writes_need_the_bearer_token(
    exposed: TestClient[Any], store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    jobs = seed_jobs(store)
    url = f"/v1/fsops/jobs/{jobs.failed}/retry"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = exposed.post(url, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        problem(refused.json(), 401)
        assert TOKEN not in refused.text
    assert store.get_job(jobs.failed).status == "failed"  # type: ignore[union-attr]

    accepted = exposed.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert accepted.status_code == 200 and accepted.json()["status"] == "pending"
    assert exposed.get("/v1/fsops/jobs").status_code == 401  # off loopback reads need it too
    assert exposed.get("/v1/fsops/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert TOKEN not in caplog.text


def test_a_token_on_loopback_is_enforced_too(store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    with TestClient(create_app(store, token=TOKEN), base_url="http://127.0.0.1") as api:
        assert api.post(f"/v1/fsops/jobs/{jobs.failed}/retry").status_code == 401
        ok = api.post(f"/v1/fsops/jobs/{jobs.failed}/retry", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


def test_a_loopback_api_refuses_writes_without_the_token(store: RuntimeStore) -> None:
    """A web page can reach a loopback API but cannot read the token, so it cannot write."""
    jobs = seed_jobs(store)
    url = f"/v1/fsops/jobs/{jobs.failed}/retry"
    with TestClient(create_app(store, token=TOKEN), base_url="http://127.0.0.1") as api:
        refused = api.post(url, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 401
        problem(refused.json(), 401)
        assert api.post(url, headers={"Origin": "http://127.0.0.1"}).status_code == 401
    assert store.get_job(jobs.failed).status == "failed"  # type: ignore[union-attr]
    with TestClient(create_app(store), base_url="http://127.0.0.1") as tokenless:
        assert tokenless.post(url).status_code == 401  # an app without a token takes no writes at all


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7080", "10.0.0.1"])
def test_a_loopback_api_answers_only_loopback_host_names(api: TestClient[Any], host: str) -> None:
    response = api.get("/v1/torrents", headers={"Host": host})
    assert response.status_code == 403
    assert "loopback" in response.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1:7080", "localhost", "[::1]:7080"])
def test_loopback_host_names_are_answered(api: TestClient[Any], host: str) -> None:
    assert api.get("/v1/torrents", headers={"Host": host}).status_code == 200
