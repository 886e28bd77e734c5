"""FsOps endpoints: listing with filters and paging, a job with its history, and the retry write."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore
from tests.support.stores import SECRET
from tests.support.surfaces import problem, seed_jobs


def test_jobs_are_listed_oldest_first_and_filtered_by_status(api: TestClient[Any], store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    everything = api.get("/v1/fsops/jobs").json()
    assert [j["torrent_id"] for j in everything["items"]] == [
        str(i) for i in (jobs.moved, jobs.failed, jobs.moving, jobs.skipped)
    ]
    assert [j["status"] for j in everything["items"]] == ["moved", "failed", "moving", "skipped"]
    assert everything["next_cursor"] is None

    chosen = api.get("/v1/fsops/jobs", params=[("status", "failed"), ("status", "skipped")]).json()
    assert [j["torrent_id"] for j in chosen["items"]] == [str(jobs.failed), str(jobs.skipped)]


def test_job_pages_follow_the_cursor_without_gaps(api: TestClient[Any], store: RuntimeStore) -> None:
    seed_jobs(store)
    first = api.get("/v1/fsops/jobs", params={"limit": 3}).json()
    second = api.get("/v1/fsops/jobs", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    ids = [j["torrent_id"] for j in first["items"] + second["items"]]
    assert len(first["items"]) == 3 and second["next_cursor"] is None
    assert ids == [j["torrent_id"] for j in api.get("/v1/fsops/jobs").json()["items"]]


def test_a_job_comes_with_every_attempt_in_its_history(api: TestClient[Any], store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    body = api.get(f"/v1/fsops/jobs/{jobs.moved}").json()
    assert body["job"]["status"] == "moved"
    assert body["job"]["attempt"] == 2
    assert body["job"]["transfer_mode"] == "hardlink"
    assert [(h["seq"], h["event"], h["status"], h["attempt"]) for h in body["history"]] == [
        (1, "started", "moving", 1),
        (2, "failed", "failed", 1),
        (3, "retry", "pending", 1),
        (4, "started", "moving", 2),
        (5, "completed", "moved", 2),
    ]
    assert "***" in body["history"][1]["detail"] and SECRET not in str(body)


def test_retry_sets_a_failed_job_pending_once(api: TestClient[Any], store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    response = api.post(f"/v1/fsops/jobs/{jobs.failed}/retry")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert store.get_job(jobs.failed).status == "pending"  # type: ignore[union-attr]

    again = api.post(f"/v1/fsops/jobs/{jobs.failed}/retry")
    assert again.status_code == 409
    problem(again.json(), 409)
    assert "only a failed job can be retried" in again.json()["detail"]
    assert [h.event for h in store.job_history(jobs.failed)][-1] == "retry"
    assert len(store.job_history(jobs.failed)) == 3  # the refused retry recorded nothing


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/fsops/jobs/nope", 400),
        ("GET", f"/v1/fsops/jobs/{uuid.UUID(int=5)}", 404),
        ("GET", "/v1/fsops/jobs?status=done", 400),
        ("GET", "/v1/fsops/jobs?limit=501", 400),
        ("GET", "/v1/fsops/jobs?cursor=%%%", 400),
        ("POST", "/v1/fsops/jobs/nope/retry", 400),
        ("POST", f"/v1/fsops/jobs/{uuid.UUID(int=5)}/retry", 404),
        ("DELETE", f"/v1/fsops/jobs/{uuid.UUID(int=5)}", 405),
    ],
)
def test_bad_job_requests_are_problems(api: TestClient[Any], method: str, path: str, status: int) -> None:
    response = api.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem(response.json(), status)
