"""The JSON shape of Revaer's values: what ``attrs.asdict`` with the value serializer gives, built faster."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from revaer_core.api.models import HealthReport, HealthStatus, JobDetail, JobPage, TorrentPage, public_json
from revaer_core.contract import samples
from revaer_core.jobs import FsJob, JobEvent, JobHistoryEntry, JobStatus, TransferMode
from revaer_core.redact import redact
from revaer_core.serialize import _value, to_json
from revaer_core.status import FileEntry, TorrentState, TorrentStatus
from revaer_core.storetypes import StoreHealth

SECRET_DSN = "postgresql://revaer:s3cret@db.example/revaer"


def _reference(value: Any) -> Any:
    """The shape as ``attrs.asdict`` builds it, each string redacted: the definition the fast path keeps to."""
    data = attrs.asdict(value, value_serializer=lambda _instance, _attribute, v: _value(v))

    def redacted(item: Any) -> Any:
        if isinstance(item, str):
            return redact(item)
        if isinstance(item, dict):
            return {key: redacted(v) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return [redacted(v) for v in item]
        return item

    return data, redacted(data)


def _same_json(value: Any) -> None:
    plain, public = _reference(value)
    assert json.dumps(to_json(value), ensure_ascii=False) == json.dumps(plain, ensure_ascii=False)
    assert json.dumps(public_json(value), ensure_ascii=False) == json.dumps(public, ensure_ascii=False)


def _job(n: int, **changes: Any) -> FsJob:
    at = samples.EPOCH + timedelta(seconds=n)
    job = FsJob(
        torrent_id=uuid.UUID(int=n + 1), status=JobStatus.PENDING, source=f"/srv/downloads/{n}", attempt=1,
        created_at=at, updated_at=at,
    )  # fmt: skip
    return attrs.evolve(job, **changes)


def test_every_stored_shape_is_the_one_attrs_asdict_gives() -> None:
    statuses = [status for _, status in samples.edge_cases()]
    for status in statuses:
        _same_json(status)
    _same_json(TorrentPage(items=tuple(statuses), next_cursor="abc"))
    failed = _job(2, status=JobStatus.FAILED, last_error=f"cannot reach {SECRET_DSN}")
    _same_json(JobPage(items=(_job(1, transfer_mode=TransferMode.HARDLINK), failed)))
    entry = JobHistoryEntry(
        torrent_id=failed.torrent_id, seq=1, event=JobEvent.FAILED, status=JobStatus.FAILED, attempt=1,
        at=samples.EPOCH, detail="password=hunter2 was refused",
    )  # fmt: skip
    _same_json(JobDetail(job=failed, history=(entry,)))
    store = StoreHealth(ok=False, detail=f"{SECRET_DSN} does not answer", facts={"dsn": SECRET_DSN, "lag": "3"})
    _same_json(HealthReport(status=HealthStatus.DEGRADED, backend="postgres", degraded={"store": "x=1"}, store=store))


@attrs.frozen
class _Odd:
    """Values no stored shape holds today, which the shape still gives as ``attrs.asdict`` does."""

    moments: tuple[datetime, ...]
    where: Path
    kinds: frozenset[TorrentState]
    by_id: dict[uuid.UUID, str]
    nested: list[list[FileEntry]]
    level: enum.IntEnum


class _Level(enum.IntEnum):
    LOW = 1


def test_containers_paths_sets_and_keys_take_the_same_shape() -> None:
    _same_json(
        _Odd(
            moments=(samples.EPOCH, samples.EPOCH.astimezone(UTC) + timedelta(microseconds=1)),
            where=Path("/srv/lib/x"),
            kinds=frozenset({TorrentState.SEEDING, TorrentState.FAILED, TorrentState.QUEUED}),
            by_id={uuid.UUID(int=7): f"mirror at {SECRET_DSN}"},
            nested=[[FileEntry(index=0, path="a=b@c", size=1)], []],
            level=_Level.LOW,
        )
    )
    assert to_json([{3: samples.EPOCH}, "x"]) == [{"3": samples.EPOCH.isoformat()}, "x"]


texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from([SECRET_DSN, "password=hunter2", "PassWord = 'se cret' rest", "a@b", "k=v", "x://y:z@w"]),
)


@settings(max_examples=200, deadline=None)
@given(
    name=st.none() | texts,
    paths=st.lists(texts, max_size=3),
    labels=st.lists(texts, max_size=3),
    library=st.none() | texts,
    stopped_because=st.none() | texts,
)
def test_every_string_of_a_status_is_redacted_as_before(
    name: str | None, paths: list[str], labels: list[str], library: str | None, stopped_because: str | None
) -> None:
    status = samples.status(
        1,
        name=name,
        state=TorrentState.STOPPED,
        failure=stopped_because,
        files=tuple(FileEntry(index=i, path=p, size=i) for i, p in enumerate(paths)),
        labels=labels,
        library_path=library,
    )
    assert isinstance(status, TorrentStatus)
    _same_json(status)
    if any(SECRET_DSN in text for text in [name or "", *paths, *labels, library or "", stopped_because or ""]):
        assert "s3cret" not in json.dumps(public_json(status))
