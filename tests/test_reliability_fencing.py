"""Fencing: a daemon that lost the writer lock writes nothing more, and a daemon stops (exit 3) on a fault.

The subprocess tests run ``revaer run`` against a private cluster. What the
first daemon committed after the second took the lock is judged by the
server: a trigger records, inside every write transaction on the store's
tables, which daemon wrote, and the commit time of that record
(``track_commit_timestamp``) is compared with the commit time of the second
daemon's claim of the fencing epoch. The ``--event-log`` cannot tell: it
logs a flush after its commit, so a daemon frozen in between logs, once
thawed, a flush it committed long before the second daemon started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from revaer_core import HELD_ELSEWHERE, WRITER_LOCK_FACT, RuntimeStore, StoreRole, WriterFenced
from revaer_core.contract import samples
from revaer_core.daemon import Daemon
from revaer_core.events import TorrentAdded
from revaer_core.settings import ApiSettings, EngineSettings, RuntimeSettings, Settings, WatchSettings
from revaer_core.testing.jobs import job_started
from revaer_core.testing.process import DaemonProcess, Daemons, EventLogView, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_memory import MemoryStore
from revaer_runtime_pg import migrate
from revaer_runtime_pg.schema import tables
from revaer_runtime_pg.testing import PrivateCluster, open_pg_store, pg_options

SCHEMA = "revaer_runtime"
SIM = ["--sim-torrents", "20", "--sim-steps", "100000"]


def _lock_backends(url: str, schema: str) -> list[int]:
    """The backend pids holding ``schema``'s writer lock (one, or none)."""
    unsigned = migrate.lock_key("daemon", schema) & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(url, autocommit=True) as connection:
        found = connection.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid::bigint = %s AND objid::bigint = %s",
            [unsigned >> 32, unsigned & 0xFFFF_FFFF],
        ).fetchall()
    return [pid for (pid,) in found]


def _terminate_lock(url: str, schema: str) -> None:
    (pid,) = _lock_backends(url, schema)
    with psycopg.connect(url, autocommit=True) as connection:
        assert connection.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    wait_for(lambda: not _lock_backends(url, schema), "the lock's session to end")


def _stored(url: str, schema: str) -> set[uuid.UUID]:
    with psycopg.connect(url) as connection:
        return {row[0] for row in connection.execute(f'SELECT id FROM "{schema}".torrents')}


def _open(url: str, schema: str, tmp_path: Path, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
    return open_pg_store(url, schema, tmp_path, role=role)


# -- the store alone ------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_store_that_lost_the_lock_takes_it_back_or_writes_nothing_once_another_daemon_took_it(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    first = _open(pg_url, pg_schema, tmp_path)
    second: RuntimeStore | None = None
    try:
        first.upsert_torrents([samples.status(1)])
        (lock_session,) = _lock_backends(pg_url, pg_schema)
        _terminate_lock(pg_url, pg_schema)
        first.upsert_torrents([samples.status(2)])  # nobody else took it: taken back, then written
        assert _lock_backends(pg_url, pg_schema) not in ([], [lock_session])
        first.remove_torrents([samples.status(2).id])

        _terminate_lock(pg_url, pg_schema)
        second = _open(pg_url, pg_schema, tmp_path)
        writes: dict[str, Callable[[], object]] = {
            "upsert": lambda: first.upsert_torrents([samples.status(3)]),
            "progress": lambda: first.update_progress([samples.status(1)]),
            "remove": lambda: first.remove_torrents([samples.status(1).id]),
            "resume data": lambda: first.save_resume_data(samples.status(1).id, b"resume"),
            "sources": lambda: first.save_torrent_sources([samples.source(1)]),
            "job": lambda: job_started(first, samples.status(1).id, "/downloads/x"),
        }
        for what, write in writes.items():
            with pytest.raises(WriterFenced, match="another Revaer daemon") as fenced:
                write()
            assert fenced.value.holder is not None and fenced.value.holder.startswith("revaer daemon "), what
        assert _stored(pg_url, pg_schema) == {samples.status(1).id}
        assert first.load_resume_data() == {} and first.load_torrent_sources() == {}
        assert first.get_job(samples.status(1).id) is None

        health = first.health()  # one attempt to take the lock back: the second daemon has it
        assert not health.ok and health.facts[WRITER_LOCK_FACT] == HELD_ELSEWHERE
        assert "another Revaer daemon (revaer daemon " in health.detail

        client = _open(pg_url, pg_schema, tmp_path, StoreRole.CLIENT)  # `revaer fsops retry` is no daemon
        try:
            job_started(client, samples.status(1).id, "/downloads/x")
        finally:
            client.close()
        second.upsert_torrents([samples.status(4)])
        second.close()
        second = None

        assert first.health().ok  # nobody holds it now: taken back, with a new epoch
        first.upsert_torrents([samples.status(5)])
        assert _stored(pg_url, pg_schema) == {samples.status(n).id for n in (1, 4, 5)}
    finally:
        if second is not None:
            second.close()
        first.close()


@pytest.mark.postgres
def test_a_new_holder_waits_for_a_write_in_flight_then_fences_the_next(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    first = _open(pg_url, pg_schema, tmp_path)
    opened: list[RuntimeStore] = []
    try:
        _terminate_lock(pg_url, pg_schema)
        # A write of the first daemon that read the fence before the lock went, and has not committed yet.
        with psycopg.connect(pg_url) as in_flight:
            in_flight.execute(f'SELECT epoch FROM "{pg_schema}".writer_fence FOR SHARE')
            opener = threading.Thread(target=lambda: opened.append(_open(pg_url, pg_schema, tmp_path)))
            opener.start()
            time.sleep(1.0)
            assert not opened, "the new holder claimed the fence under a write in flight"
            in_flight.commit()
        opener.join(timeout=30)
        assert opened, "the new holder did not start once the write in flight committed"
        with pytest.raises(WriterFenced, match="another Revaer daemon"):
            first.upsert_torrents([samples.status(1)])
        assert _stored(pg_url, pg_schema) == set()
    finally:
        for store in opened:
            store.close()
        first.close()


@pytest.mark.postgres
def test_a_new_holder_ends_a_write_in_flight_that_stalls_in_a_statement(
    pg_url: str, pg_schema: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A daemon frozen mid-statement (a COPY) is not idle in its transaction: the claim ends its session."""
    first = _open(pg_url, pg_schema, tmp_path)
    second: RuntimeStore | None = None
    try:
        _terminate_lock(pg_url, pg_schema)
        stalled: list[BaseException] = []
        with psycopg.connect(pg_url, application_name="revaer daemon frozen:1") as in_flight:
            in_flight.execute(f'SELECT epoch FROM "{pg_schema}".writer_fence FOR SHARE')

            def stall() -> None:
                try:
                    in_flight.execute("SELECT pg_sleep(120)")
                except psycopg.OperationalError as exc:
                    stalled.append(exc)

            staller = threading.Thread(target=stall)
            staller.start()
            second = _open(pg_url, pg_schema, tmp_path)
            staller.join(timeout=30)
        assert stalled, "the stalled write's session was not ended"
        assert "ended session" in caplog.text and "revaer daemon frozen:1" in caplog.text
        with pytest.raises(WriterFenced, match="another Revaer daemon"):
            first.upsert_torrents([samples.status(1)])
        second.upsert_torrents([samples.status(2)])
        assert _stored(pg_url, pg_schema) == {samples.status(2).id}
    finally:
        if second is not None:
            second.close()
        first.close()


@pytest.mark.postgres
def test_a_fenced_daemon_reports_failed_naming_the_holder_and_stops(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    settings = Settings(
        runtime=RuntimeSettings(backend="postgres", data_dir=tmp_path / "data", flush_interval_ms=20),
        engine=EngineSettings(download_dir=downloads),
        api=ApiSettings(host="127.0.0.1", port=0),
    )
    daemon = Daemon(
        settings,
        engine="simulated",  # by name: the registry finds the harness's engine, saving into downloads
        store=_open(pg_url, pg_schema, tmp_path),
    )
    daemon.start()
    second: RuntimeStore | None = None
    try:
        _terminate_lock(pg_url, pg_schema)  # the daemon has nothing to write: it does not notice
        second = _open(pg_url, pg_schema, tmp_path)
        (holder,) = _lock_backends(pg_url, pg_schema)
        daemon.bus.publish(TorrentAdded(torrent_id=uuid.uuid4(), name="after the second daemon"))
        assert daemon.wait(timeout=30), "the fenced daemon did not stop"
        answer = httpx.get(f"{daemon.api.url}/health", timeout=30).json()
        assert answer["status"] == "failed", answer
        assert "another Revaer daemon (revaer daemon " in answer["degraded"]["writer_lock"], answer
        assert f"backend pid {holder}" in answer["degraded"]["daemon"], answer
        assert _stored(pg_url, pg_schema) == set()
    finally:
        report = daemon.stop()
        assert daemon.store is not None
        daemon.store.close()
        if second is not None:
            second.close()
    assert report.failure is not None and "lost the writer lock" in report.failure
    assert report.unwritten_torrents and "1 torrent status(es) not written" in report.summary()
    assert _stored(pg_url, pg_schema) == set()


@pytest.mark.postgres
def test_the_lock_session_outlives_a_server_idle_session_timeout(
    private_cluster: PrivateCluster, tmp_path: Path
) -> None:
    with psycopg.connect(private_cluster.url, autocommit=True) as connection:
        connection.execute("ALTER SYSTEM SET idle_session_timeout = '300ms'")
        connection.execute("SELECT pg_reload_conf()")
    store = _open(private_cluster.url, SCHEMA, tmp_path)
    try:
        (session,) = _lock_backends(private_cluster.url, SCHEMA)
        time.sleep(1.5)  # five timeouts' worth of idleness
        assert _lock_backends(private_cluster.url, SCHEMA) == [session]
    finally:
        store.close()


# -- real daemons ---------------------------------------------------------------------------------------------


def _config(tmp_path: Path, cluster: PrivateCluster, name: str = "revaer.toml") -> Path:
    return write_config(
        tmp_path / name,
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data"), "flush_interval_ms": 50},
            "runtime.postgres": pg_options(cluster.url, SCHEMA, connect_timeout_s=5),
            "engine": {"download_dir": str(tmp_path / "downloads")},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )


def _flushes(path: Path) -> int:
    return len(EventLogView.read(path).written)


def _error_lines(daemon: DaemonProcess) -> list[str]:
    return [line for line in daemon.stderr.splitlines() if line.startswith("revaer: error:")]


#: Where the write audit lives: a schema of its own, which no store reads or writes.
AUDIT = "fence_audit"


def _audit_writes(url: str, schema: str) -> None:
    """From now on, every statement that writes a table of the store in ``schema`` adds a row naming its
    session's ``application_name`` to ``fence_audit.writes``, in its own transaction: the row commits
    exactly when the write does, and its ``xmin`` is that transaction's."""
    audited = [t.name for t in tables(schema).metadata.sorted_tables if t.name != "writer_fence"]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{AUDIT}"')
        connection.execute(f'CREATE TABLE "{AUDIT}".writes (application_name text NOT NULL)')
        connection.execute(
            f'CREATE FUNCTION "{AUDIT}".record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
            f"INSERT INTO \"{AUDIT}\".writes VALUES (current_setting('application_name')); RETURN NULL; END $$"
        )
        for table in audited:
            connection.execute(
                f'CREATE TRIGGER fence_audit AFTER INSERT OR UPDATE OR DELETE ON "{schema}"."{table}" '
                f'FOR EACH STATEMENT EXECUTE FUNCTION "{AUDIT}".record()'
            )


def _commits_of(url: str, daemon: DaemonProcess) -> list[datetime]:
    """When each write of ``daemon`` that the audit recorded committed, by the server's clock."""
    with psycopg.connect(url, autocommit=True) as connection:
        found = connection.execute(
            f'SELECT pg_xact_commit_timestamp(xmin) FROM "{AUDIT}".writes '
            "WHERE application_name LIKE 'revaer daemon %%:' || %s",
            [str(daemon.pid)],
        ).fetchall()
    assert all(at is not None for (at,) in found), "the server keeps no commit times (track_commit_timestamp)"
    return sorted(at for (at,) in found)


def _claimed(url: str, schema: str) -> tuple[str, datetime]:
    """Who holds the fencing epoch, and when their claim of it committed, by the server's clock."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            f'SELECT holder, pg_xact_commit_timestamp(xmin) FROM "{schema}".writer_fence'
        ).fetchone()
    assert row is not None and row[1] is not None, row
    return row[0], row[1]


def _flushing(daemons: Daemons, config: Path, event_log: Path) -> DaemonProcess:
    """A first daemon, running and past its fifth committed flush (logged to ``event_log``)."""
    first = daemons(*SIM, "--event-log", str(event_log), config=config)
    first.wait_running()
    wait_for(lambda: _flushes(event_log) >= 5, "the first daemon's flushes", timeout=30)
    return first


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("loss", ["terminate", "restart"])
def test_a_daemon_that_lost_the_lock_writes_nothing_after_a_second_starts_and_exits_3(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons, loss: str
) -> None:
    url = private_cluster.url
    config = _config(tmp_path, private_cluster)
    first = _flushing(daemons, config, tmp_path / "a.jsonl")
    _audit_writes(url, SCHEMA)
    wait_for(lambda: len(_commits_of(url, first)) >= 3, "the first daemon's audited writes", timeout=30)

    # Frozen (a GC pause, a suspended VM) while it loses the lock, so that a second daemon gets it.
    first.process.send_signal(signal.SIGSTOP)
    try:
        if loss == "terminate":
            _terminate_lock(url, SCHEMA)
        else:
            private_cluster.restart()
        second = daemons(*SIM, "--no-api", config=config)
        second.wait_running()
    finally:
        first.process.send_signal(signal.SIGCONT)

    try:
        code: int | None = first.wait_exit(timeout=60)
    except subprocess.TimeoutExpired:
        first.kill()
        code = None
    holder, claimed_at = _claimed(url, SCHEMA)
    assert holder.endswith(f":{second.pid}"), holder
    wait_for(lambda: any(at > claimed_at for at in _commits_of(url, second)), "the second daemon's writes")
    commits = _commits_of(url, first)
    after_claim = [at for at in commits if at > claimed_at]
    print(f"{loss}: the first daemon's commits: {len(commits) - len(after_claim)} before the second daemon's "
          f"claim, {len(after_claim)} after it")  # fmt: skip
    assert not after_claim, (
        f"the first daemon committed {len(after_claim)} write(s) after the second daemon's claim at {claimed_at}, "
        f"the first at {after_claim[0]}:\n{first.stderr}"
    )
    assert code == 3, first.stderr
    assert "runtime store writes refused: another Revaer daemon (revaer daemon " in first.stderr, first.stderr
    errors = _error_lines(first)
    assert len(errors) == 1, first.stderr
    assert f":{second.pid}" in errors[0] and "lost the writer lock" in errors[0], errors[0]
    assert "stopped cleanly" not in first.stderr

    assert second.alive and second.terminate() == 0, second.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_a_daemon_takes_a_lost_lock_back_when_nobody_has_it_and_writes_what_it_buffered(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    config = _config(tmp_path, private_cluster)
    log_a = tmp_path / "a.jsonl"
    first = _flushing(daemons, config, log_a)
    _terminate_lock(private_cluster.url, SCHEMA)
    wait_for(lambda: "taken again after its connection dropped" in first.stderr, "the lock taken back", timeout=30)
    wait_for(lambda: len(_lock_backends(private_cluster.url, SCHEMA)) == 1, "the lock held again")
    flushed = _flushes(log_a)
    wait_for(lambda: _flushes(log_a) > flushed + 5, "flushes after the lock came back", timeout=30)
    assert first.health()["status"] == "ok"

    refused = daemons(*SIM, "--no-api", config=config)  # the lock is its again: a second daemon is refused
    assert refused.wait_exit(timeout=60) == 3, refused.stderr
    assert first.terminate() == 0, first.stderr
    assert "revaer stopped cleanly" in first.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_a_stop_that_cannot_write_everything_exits_3_saying_what_was_left(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    config = write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data"), "shutdown_deadline_s": 2},
            "runtime.postgres": pg_options(private_cluster.url, SCHEMA, connect_timeout_s=1),
            "engine": {"download_dir": str(tmp_path / "downloads")},
        },
    )
    daemon = daemons(*SIM, "--no-api", config=config)
    daemon.wait_running()
    private_cluster.stop()
    wait_for(lambda: "runtime store write failed" in daemon.stderr, "a failed write", timeout=30)
    assert daemon.terminate() == 3, daemon.stderr
    errors = _error_lines(daemon)
    assert len(errors) == 1, daemon.stderr
    assert errors[0].startswith("revaer: error: stopped with ") and "not written to the runtime store" in errors[0]
    assert "stopped cleanly" not in daemon.stderr


# -- a thread that dies, a start that fails ---------------------------------------------------------------------

#: ``Event.wait`` raises OverflowError past ``threading.TIMEOUT_MAX`` (about 292 years): the watch thread dies
#: on its first wait. A real defect of a setting with no upper bound, and the way to check the guard.
DEADLY_POLL_S = 1e10


def test_a_dying_thread_turns_health_failed_and_stops_the_daemon(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    settings = Settings(
        runtime=RuntimeSettings(backend="memory", data_dir=tmp_path / "data"),
        engine=EngineSettings(
            download_dir=downloads, watch_dir=tmp_path / "watch", watch=WatchSettings(poll_interval_s=DEADLY_POLL_S)
        ),
        api=ApiSettings(host="127.0.0.1", port=0),
    )
    store = RuntimeStore.open(MemoryStore(), name="memory", data_dir=tmp_path / "data")
    daemon = Daemon(settings, engine="simulated", store=store)
    daemon.start()
    try:
        assert daemon.wait(timeout=30), "the daemon did not notice its watch thread died"
        answer = httpx.get(f"{daemon.api.url}/health", timeout=30).json()
        assert answer["status"] == "failed", answer
        assert "thread revaer-watch" in answer["degraded"]["daemon"] and "OverflowError" in answer["degraded"]["daemon"]
    finally:
        report = daemon.stop()
    assert not report.clean and report.failure is not None and "OverflowError" in report.failure


#: Settings refuse such an interval now, so ``revaer run`` gets the same defect injected at start-up:
#: the cause of the death is not what the test is about, the daemon's answer to it is.
DEADLY_WATCH = f"""
import revaer_core.control.watch as watch
watch.WatchFolder.interval = property(lambda self: {DEADLY_POLL_S!r})
"""


@pytest.mark.slow
def test_revaer_run_exits_3_naming_the_thread_that_died(tmp_path: Path, daemons: Daemons) -> None:
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(DEADLY_WATCH)
    config = write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "memory", "data_dir": str(tmp_path / "data")},
            "engine": {"download_dir": str(tmp_path / "downloads"), "watch_dir": str(tmp_path / "watch")},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )
    path = os.pathsep.join(p for p in (str(inject), os.environ.get("PYTHONPATH", "")) if p)
    daemon = daemons("--sim-torrents", "3", config=config, env={"PYTHONPATH": path})
    assert daemon.wait_exit(timeout=60) == 3, daemon.stderr
    errors = _error_lines(daemon)
    assert len(errors) == 1 and "thread revaer-watch died: OverflowError" in errors[0], daemon.stderr
    assert "stopped cleanly" not in daemon.stderr
    assert "Traceback" in daemon.stderr  # the log keeps the traceback; the last line says why


@pytest.mark.slow
def test_a_failed_start_never_says_stopped_cleanly(tmp_path: Path, daemons: Daemons) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(
            tmp_path / "revaer.toml",
            {
                "runtime": {"backend": "memory", "data_dir": str(tmp_path / "data")},
                "engine": {"download_dir": str(tmp_path / "downloads")},
                "api": {"host": "127.0.0.1", "port": taken.getsockname()[1]},
            },
        )
        daemon = daemons(config=config)
        assert daemon.wait_exit(timeout=60) == 3, daemon.stderr
    assert "stopped cleanly" not in daemon.output(), daemon.stderr
    assert len(_error_lines(daemon)) == 1, daemon.stderr
