"""With no store selected every write is a no-op and every read says nothing is persisted."""

from __future__ import annotations

import uuid

from revaer_core import JobQuery, RuntimeStore, TorrentQuery, TransferMode
from revaer_core.contract import samples
from revaer_core.redact import redact
from revaer_core.testing.jobs import job_completed, job_started


def test_writes_are_accepted_and_reads_are_empty() -> None:
    store = RuntimeStore.none()
    status = samples.status(1)
    assert store.upsert_torrents([status]) == ()
    store.remove_torrents([status.id])
    store.save_resume_data(status.id, b"x")
    assert job_started(store, status.id, "/src") is None
    assert job_completed(store, status.id, "/src", "/dst", TransferMode.COPY) is None
    assert store.load_torrents() == []
    assert store.get_torrent(status.id) is None
    assert store.list_torrents(TorrentQuery()).items == ()
    assert store.list_jobs(JobQuery()).items == ()
    assert store.job_history(uuid.uuid4()) == []
    assert store.load_resume_data() == {}
    assert store.capabilities() == frozenset()
    health = store.health()
    assert health.ok and "no runtime store selected" in health.detail
    store.close()
    store.close()


def test_passwords_are_redacted_in_both_dsn_forms() -> None:
    assert redact("postgresql://revaer:s3cr%40t@db:5432/x failed") == "postgresql://revaer:***@db:5432/x failed"
    assert redact("host=db password='a b' user=x") == "host=db password=*** user=x"
    assert redact("password=hunter2") == "password=***"
    assert redact("postgresql://db/x and no secret") == "postgresql://db/x and no secret"
