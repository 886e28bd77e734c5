"""SQL injection attempts through every stored string and every API filter: kept literally, never run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from revaer_core import (
    FileEntry,
    JobEvent,
    JobTransition,
    RuntimeStore,
    StoredSource,
    TorrentState,
    TorrentStatus,
    TransferMode,
)
from revaer_core.api.app import create_app
from revaer_core.bus import EventBus

pytestmark = pytest.mark.postgres

ATTACKS = [
    "'; DROP TABLE torrents; --",
    "x' OR '1'='1",
    '"); DELETE FROM fs_jobs; --',
    "Robert'); DROP SCHEMA public CASCADE;--",
    "%' OR name LIKE '%",
    "100%_done\\",
    "$$; SELECT pg_sleep(10); $$",
    "\\'; COPY torrents TO '/tmp/x'; --",
    "E'\\x27' || chr(39)",
]


@pytest.fixture
def store(pg_store: RuntimeStore) -> RuntimeStore:
    return pg_store


def tables_intact(pg_url: str, schema: str) -> set[str]:
    with psycopg.connect(pg_url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
    return {r[0] for r in rows}


def test_every_string_field_keeps_an_injection_literally(store: RuntimeStore, pg_url: str, pg_schema: str) -> None:
    now = datetime.now(UTC)
    before = tables_intact(pg_url, pg_schema)
    statuses = [
        TorrentStatus(
            id=uuid.uuid4(),
            added_at=now,
            last_updated=now,
            name=attack,
            state=TorrentState.STOPPED,
            failure=attack,
            files=[FileEntry(index=0, path=attack, size=1)],
            library_path=attack,
            download_dir=attack,
            info_hash=attack,
            labels=(attack, f"{attack} 2"),
        )
        for attack in ATTACKS
    ]
    store.upsert_torrents(statuses)
    sources = [
        StoredSource(torrent_id=s.id, added_at=now, magnet=attack) for s, attack in zip(statuses, ATTACKS, strict=True)
    ]
    store.save_torrent_sources(sources)
    assert store.load_torrent_sources() == {s.torrent_id: s for s in sources}
    for status, attack in zip(statuses, ATTACKS, strict=True):
        assert store.get_torrent(status.id) == status
        store.record_job_transition(JobTransition(status.id, JobEvent.STARTED, now, source=attack))
        job = store.record_job_transition(
            JobTransition(status.id, JobEvent.COMPLETED, now, source=attack, destination=attack,
                          transfer_mode=TransferMode.COPY, detail=attack)
        )  # fmt: skip
        assert job is not None and (job.source, job.destination) == (attack, attack)
        assert [h.source for h in store.job_history(status.id)] == [attack, attack]
    assert {s.id for s in store.load_torrents()} == {s.id for s in statuses}
    assert tables_intact(pg_url, pg_schema) == before


def test_every_api_filter_takes_an_injection_literally(store: RuntimeStore, pg_url: str, pg_schema: str) -> None:
    now = datetime.now(UTC)
    named = [TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, name=a) for a in ATTACKS]
    plain = TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, name="ordinary name")
    store.upsert_torrents([*named, plain])
    with TestClient(app=create_app(store, bus=EventBus()), base_url="http://127.0.0.1") as api:
        for status, attack in zip(named, ATTACKS, strict=True):
            found = api.get("/v1/torrents", params={"name": attack})
            assert found.status_code == 200
            assert [i["id"] for i in found.json()["items"]] == [str(status.id)], attack  # literal, no wildcard
            for param, path in [("state", "/v1/torrents"), ("sort", "/v1/torrents"), ("desc", "/v1/torrents"),
                                ("limit", "/v1/torrents"), ("cursor", "/v1/torrents"), ("status", "/v1/fsops/jobs"),
                                ("limit", "/v1/fsops/jobs"), ("cursor", "/v1/fsops/jobs")]:  # fmt: skip
                refused = api.get(path, params={param: attack})
                assert refused.status_code == 400, (param, attack, refused.text)
                assert refused.headers["content-type"].startswith("application/problem+json")
            for path in ("/v1/torrents/{}", "/v1/fsops/jobs/{}"):
                answer: Any = api.get(path.format(attack))
                assert answer.status_code in (400, 404), (path, attack, answer.text)
            assert api.get("/v1/events", params={"after": attack}).status_code == 400
            header = attack.encode("ascii", "replace").decode()  # a header carries ASCII only
            assert api.get("/v1/events", headers={"Last-Event-ID": header}).status_code == 400
    assert len(store.load_torrents()) == len(ATTACKS) + 1
    assert tables_intact(pg_url, pg_schema) == {
        "torrents",
        "torrent_sources",
        "fs_jobs",
        "fs_job_history",
        "writer_fence",
        "alembic_version",
    }
