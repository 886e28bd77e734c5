"""``revaer fsops``: jobs, one job with its history, and retry with its refusals."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from revaer_core import JobStatus, RuntimeStore
from tests.support.stores import SECRET
from tests.support.surfaces import CliRunner, seed_jobs


def test_jobs_table_and_status_filter(revaer: CliRunner, store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    result = revaer("fsops", "jobs")
    assert result.code == 0
    header, *rows = result.out.splitlines()
    assert header.split()[:4] == ["TORRENT", "STATUS", "ATTEMPT", "MODE"]
    assert [row.split()[0] for row in rows] == [str(i) for i in (jobs.moved, jobs.failed, jobs.moving, jobs.skipped)]
    assert "hardlink" in rows[0] and "disk full" in rows[1]

    failed = json.loads(revaer("fsops", "jobs", "--status", "failed", "--json").out)
    assert [j["torrent_id"] for j in failed["items"]] == [str(jobs.failed)]


def test_jobs_paging_and_all(revaer: CliRunner, store: RuntimeStore) -> None:
    seed_jobs(store)
    first = json.loads(revaer("fsops", "jobs", "--limit", "3", "--json").out)
    rest = json.loads(revaer("fsops", "jobs", "--limit", "3", "--cursor", first["next_cursor"], "--json").out)
    every = json.loads(revaer("fsops", "jobs", "--limit", "1", "--all", "--json").out)
    assert [j["torrent_id"] for j in first["items"] + rest["items"]] == [j["torrent_id"] for j in every["items"]]
    assert len(every["items"]) == 4 and every["next_cursor"] is None


def test_show_lists_every_attempt(revaer: CliRunner, store: RuntimeStore, api: TestClient[Any]) -> None:
    jobs = seed_jobs(store)
    result = revaer("fsops", "show", str(jobs.moved))
    assert result.code == 0
    history = result.out.split("\n\n")[1].splitlines()
    assert history[0].split()[:5] == ["SEQ", "AT", "EVENT", "STATUS", "ATTEMPT"]
    assert [line.split()[3] for line in history[1:]] == ["started", "failed", "retry", "started", "completed"]
    assert SECRET not in result.out and "***" in result.out

    as_json = json.loads(revaer("fsops", "show", str(jobs.moved), "--json").out)
    assert as_json == api.get(f"/v1/fsops/jobs/{jobs.moved}").json()
    assert len(as_json["history"]) == 5


def test_retry_a_failed_job_then_refuse_a_second(revaer: CliRunner, store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    done = revaer("fsops", "retry", str(jobs.failed))
    assert done.code == 0, done.err
    assert "pending" in done.out
    assert store.get_job(jobs.failed).status is JobStatus.PENDING  # type: ignore[union-attr]

    refused = revaer("fsops", "retry", str(jobs.failed))
    assert refused.code == 2
    assert refused.err.strip() == (
        f"revaer: error: job of torrent {jobs.failed} is pending; only a failed job can be retried"
    )
    as_json = revaer("fsops", "retry", str(jobs.moved), "--json")
    assert as_json.code == 2 and as_json.out == ""


def test_retry_json_is_the_job(revaer: CliRunner, store: RuntimeStore) -> None:
    jobs = seed_jobs(store)
    job = json.loads(revaer("fsops", "retry", str(jobs.failed), "--json").out)
    assert (job["torrent_id"], job["status"], job["attempt"]) == (str(jobs.failed), "pending", 1)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["fsops", "show", "xyz"], "is not a torrent id"),
        (["fsops", "show", str(uuid.UUID(int=7))], "no FsOps job for torrent"),
        (["fsops", "retry", "xyz"], "is not a torrent id"),
        (["fsops", "retry", str(uuid.UUID(int=7))], "no FsOps job for torrent"),
        (["fsops", "jobs", "--status", "done"], "'done' is not one of"),
        (["fsops", "jobs", "--limit", "501"], "--limit"),
    ],
)
def test_invalid_input_exits_2(revaer: CliRunner, args: list[str], words: str) -> None:
    result = revaer(*args)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and words in result.err
