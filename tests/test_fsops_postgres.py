"""FsOps with the PostgreSQL store: moved and failed jobs with their history, still there after a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revaer_core import JobEvent, JobStatus, RuntimeStore, StoreRole, TransferMode
from revaer_core.settings import Settings
from revaer_runtime_pg import PostgresStore
from revaer_runtime_pg.testing import pg_options
from tests.support.fsops import Layout, Services, new_id, run, status
from tests.support.surfaces import CliRunner

pytestmark = pytest.mark.postgres


def test_jobs_land_in_postgres_and_survive_a_restart(
    pg_url: str,
    pg_schema: str,
    tmp_path: Path,
    layout: Layout,
    services: Services,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def open_store(role: StoreRole) -> RuntimeStore:
        options = pg_options(pg_url, pg_schema)
        return RuntimeStore.open(PostgresStore(), name="postgres", options=options, data_dir=tmp_path, role=role)

    layout.payload("Show", {"e1.mkv": b"episode"})
    done, broken = status(new_id(), "Show", layout.downloads), status(new_id(), "Missing", layout.downloads)
    daemon = open_store(StoreRole.DAEMON)
    daemon.upsert_torrents([done, broken])  # the orchestrator has persisted both torrents by now
    service = services(layout.settings(transfer_mode="move"), daemon)
    assert run(service, done).status is JobStatus.MOVED
    assert run(service, broken).status is JobStatus.FAILED
    assert service.close() == []
    daemon.close()

    restarted = open_store(StoreRole.CLIENT)  # a new process, as the CLI and the API open it
    try:
        destination = str(layout.library / "Show")
        moved = restarted.get_job(done.id)
        assert moved is not None
        assert (moved.status, moved.destination, moved.transfer_mode) == (
            JobStatus.MOVED,
            destination,
            TransferMode.MOVE,
        )
        assert [e.event for e in restarted.job_history(done.id)] == [JobEvent.STARTED, JobEvent.COMPLETED]
        error = f"locate_source: source {layout.downloads / 'Missing'} not found"
        failed = restarted.get_job(broken.id)
        assert failed is not None and (failed.status, failed.last_error) == (JobStatus.FAILED, error)
        assert [(e.event, e.detail) for e in restarted.job_history(broken.id)] == [
            (JobEvent.STARTED, None),
            (JobEvent.FAILED, error),
        ]
        revaer = CliRunner(capsys, restarted, Settings())
        for torrent_id, expected in ((done.id, "moved"), (broken.id, "failed")):
            shown = revaer("fsops", "show", str(torrent_id), "--json")
            assert shown.code == 0, shown.err
            assert json.loads(shown.out)["job"]["status"] == expected
    finally:
        restarted.close()
