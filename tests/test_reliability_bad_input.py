"""Bad input, fuzzed: statuses no store should choke on, and settings no operator should be puzzled by.

Statuses go through the real write-behind writer into PostgreSQL: each value
round-trips exactly or is stored sanitised (NUL and surrogates as U+FFFD,
numbers clamped to the column) with a warning naming the torrent; no batch
loses a neighbour, no exception leaves the writer, health stays ok.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revaer_core import ConfigError, FileEntry, Progress, Rates, RuntimeStore, TorrentState, TorrentStatus
from revaer_core.health import HealthBoard
from revaer_core.orchestrator.writer import StoreWriter
from revaer_core.settings import load_settings
from revaer_core.testing.process import revaer
from revaer_runtime_pg.testing import open_pg_store

BIGINT = (-(2**63), 2**63 - 1)
INTEGER = (-(2**31), 2**31 - 1)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text: any code point but surrogates, with NULs and lone high surrogates mixed in (escaped bytes from
# os.fsdecode, U+DC80..U+DCFF, are decoded rather than replaced: tests/test_pg_bad_input.py covers them).
texts = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.just("\x00"),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDBFF),
    ),
    max_size=40,
)
wide_ints = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, *BIGINT]))
sizes = st.one_of(st.integers(min_value=0, max_value=2**70), st.sampled_from([0, BIGINT[1], BIGINT[1] + 1]))
zones = st.one_of(
    st.just(UTC), st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
    .map(lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1)))),
)  # fmt: skip
moments = st.datetimes(timezones=zones)  # years 1 to 9999 at any offset: some are in year 0 or 10000 in UTC
files = st.builds(
    FileEntry,
    index=wide_ints,
    path=texts,
    size=sizes,
    bytes_completed=sizes,
    priority=wide_ints,
    selected=st.booleans(),
)


@st.composite
def statuses(draw: st.DrawFn) -> TorrentStatus:
    state = draw(st.sampled_from(TorrentState))
    failure = (
        draw(texts)
        if state is TorrentState.FAILED
        else draw(st.none() | texts)
        if state is TorrentState.STOPPED
        else None
    )
    return TorrentStatus(
        id=draw(st.uuids()),
        added_at=draw(moments),
        last_updated=draw(moments),
        name=draw(st.none() | texts),
        state=state,
        failure=failure,
        progress=Progress(draw(sizes), draw(sizes), draw(st.none() | wide_ints)),
        rates=Rates(draw(wide_ints), draw(wide_ints), draw(st.floats(allow_nan=False))),
        files=draw(st.none() | st.lists(files, max_size=4)),
        library_path=draw(st.none() | texts),
        download_dir=draw(st.none() | texts),
        sequential=draw(st.booleans()),
        completed_at=draw(st.none() | moments),
    )  # fmt: skip


def clean(text: str | None) -> str | None:
    """What PostgreSQL TEXT can hold: NUL and surrogates as U+FFFD (the oracle, written apart from the store)."""
    if text is None:
        return None
    return "".join("\ufffd" if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def clamp(value: int | None, bounds: tuple[int, int] = BIGINT) -> int | None:
    return None if value is None else min(max(value, bounds[0]), bounds[1])


def clamp_moment(moment: datetime) -> datetime:
    """Years 1 to 9999 in UTC, as the store can read them back."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
    return moment


def storable(s: TorrentStatus) -> TorrentStatus:
    """``s`` as the store must give it back."""
    return attrs.evolve(
        s,
        name=clean(s.name),
        failure=clean(s.failure),
        library_path=clean(s.library_path),
        download_dir=clean(s.download_dir),
        added_at=clamp_moment(s.added_at),
        last_updated=clamp_moment(s.last_updated),
        completed_at=None if s.completed_at is None else clamp_moment(s.completed_at),
        progress=Progress(clamp(s.progress.downloaded), clamp(s.progress.total), clamp(s.progress.eta_seconds)),  # type: ignore[arg-type]
        rates=Rates(clamp(s.rates.download_bps), clamp(s.rates.upload_bps), s.rates.ratio),  # type: ignore[arg-type]
        files=None if s.files is None else tuple(
            FileEntry(clamp(f.index, INTEGER), clean(f.path), clamp(f.size), clamp(f.bytes_completed),  # type: ignore[arg-type]
                      clamp(f.priority, INTEGER), f.selected)  # type: ignore[arg-type]
            for f in s.files
        ),
    )  # fmt: skip


@pytest.fixture
def writer(pg_url: str, pg_schema: str, tmp_path: Path) -> Iterator[tuple[StoreWriter, RuntimeStore, HealthBoard]]:
    store = open_pg_store(pg_url, pg_schema, tmp_path)
    board = HealthBoard()
    made = StoreWriter(store, interval=0.01, health=board)
    made.start()
    yield made, store, board
    made.close(5.0)
    store.close()


def write_and_check(
    writer: tuple[StoreWriter, RuntimeStore, HealthBoard], batch: list[TorrentStatus], caplog: pytest.LogCaptureFixture
) -> None:
    """One flush of ``batch``; every status back exactly or sanitised with a warning, none lost."""
    pending, store, board = writer
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for status in batch:
            pending.upsert(status)
        assert pending.flush(30), "the writer did not get the batch into the store"
    assert board.ok, board.degraded
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warned = " ".join(r.getMessage() for r in caplog.records)
    for status in batch:
        loaded = store.get_torrent(status.id)
        expected = storable(status)
        assert loaded == expected, f"{status.id}: stored {loaded!r}, expected {expected!r}"
        if expected != status:
            assert f"torrent {status.id}: stored sanitised" in warned, f"no warning names {status.id}"
        else:
            assert str(status.id) not in warned


@pytest.mark.postgres
def test_fuzzed_statuses_round_trip_or_are_stored_sanitised(
    writer: tuple[StoreWriter, RuntimeStore, HealthBoard], caplog: pytest.LogCaptureFixture
) -> None:
    @FUZZ
    @given(batch=st.lists(statuses(), min_size=1, max_size=6, unique_by=lambda s: s.id))
    def check(batch: list[TorrentStatus]) -> None:
        write_and_check(writer, batch, caplog)

    check()


@pytest.mark.postgres
def test_ten_thousand_files_empty_lists_and_edge_timestamps_beside_poisoned_neighbours(
    writer: tuple[StoreWriter, RuntimeStore, HealthBoard], caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    year_0_in_utc = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    year_10000_in_utc = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    many = tuple(
        FileEntry(index=i, path=f"Season {i // 100}/épisode\x00{i}.mkv", size=i * 2**40) for i in range(10_000)
    )
    batch = [
        TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, name="big", files=many),
        TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, name="none", files=()),
        TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, name="nul\x00name", files=None),
        TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, progress=Progress(2**63 - 1, 2**64)),
        TorrentStatus(id=uuid.uuid4(), added_at=year_0_in_utc, last_updated=year_10000_in_utc),
    ]
    write_and_check(writer, batch, caplog)


@given(value=st.integers(max_value=-1))
@settings(max_examples=20, deadline=None)
def test_negative_sizes_are_refused_by_the_model(value: int) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        Progress(downloaded=value)
    with pytest.raises(ValueError, match="must be >= 0"):
        Progress(total=value)
    with pytest.raises(ValueError, match="must be >= 0"):
        FileEntry(index=0, path="a", size=value)
    with pytest.raises(ValueError, match="must be >= 0"):
        FileEntry(index=0, path="a", size=1, bytes_completed=value)


# -- settings ------------------------------------------------------------------------------------------


@given(
    value=st.text(max_size=12).filter(
        lambda v: v.strip().lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}
    )
)
@settings(max_examples=40, deadline=None)
def test_a_bad_boolean_in_the_environment_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"REVAER_RUNTIME_PERSISTENCE": value})
    assert "REVAER_RUNTIME_PERSISTENCE" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ("[runtime\nbackend = 'memory'", {}, "not valid TOML"),
        ("[runtime]\nflush_interval_ms = 'fast'\n", {}, "runtime.flush_interval_ms"),
        ("[runtime]\nbakend = 'memory'\n", {}, "runtime.bakend"),
        ("[runtime]\nbackend = 'postgres'\n[runtime.postgres]\npool_size = 0\n", {}, "runtime.postgres.pool_size"),
        ("[api]\nport = 70000\n", {}, "api.port"),
        ("[fsops]\nenabled = true\n", {}, "fsops.library_root"),
        ("", {"REVAER_RUNTIME_PERSISTENCE": "perhaps"}, "REVAER_RUNTIME_PERSISTENCE"),
        ("", {"REVAER_API_TOKEN": " "}, "REVAER_API_TOKEN"),
        ("", {"REVAER_DATA_DIR": ""}, "REVAER_DATA_DIR"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else None,
)
def test_malformed_settings_stop_the_cli_with_one_line_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], key: str
) -> None:
    config = tmp_path / "revaer.toml"
    config.write_text(toml, encoding="utf-8")
    result = revaer("--config", str(config), "api", "--port", "0", env=env, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("revaer: error: "), result.stderr
    assert key in result.stderr
    assert "Traceback" not in result.stderr
