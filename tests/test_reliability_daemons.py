"""Real ``revaer run`` processes against one schema: one writer at a time, and schema revisions it refuses."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import psycopg
import pytest

from revaer_core.testing.process import Daemons, revaer, write_config
from revaer_runtime_pg import migrate
from revaer_runtime_pg.testing import PrivateCluster, pg_options

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "revaer_runtime"
SIM = ["--sim-torrents", "5", "--sim-steps", "1000"]


def config_for(tmp_path: Path, cluster: PrivateCluster, **postgres: object) -> Path:
    return write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data")},
            "runtime.postgres": pg_options(cluster.url, SCHEMA, connect_timeout_s=5, **postgres),
            "engine": {"download_dir": str(tmp_path / "downloads")},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )


def snapshot(cluster: PrivateCluster) -> list[tuple[object, ...]]:
    """Every row of every table of the schema, updated_at included: what "never written" is checked on."""
    with psycopg.connect(cluster.url) as connection:
        found: list[tuple[object, ...]] = []
        for table in ("alembic_version", "torrents", "fs_jobs", "fs_job_history"):
            found += [(table, *row) for row in connection.execute(f'SELECT * FROM "{SCHEMA}".{table} ORDER BY 1')]
        return found


def _kept_rows(after: list[tuple[object, ...]], before: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """``after``'s rows (but the version's) cut to the columns they had ``before``.

    A migration adds columns at the end, so the rows a newer revision keeps begin with the old ones.
    """
    width = {row[0]: len(row) for row in before}
    return [row[: width[row[0]]] for row in after if row[0] != "alembic_version"]


def test_a_second_daemon_is_refused_naming_the_holder_until_the_first_dies(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    config = config_for(tmp_path, private_cluster)
    first = daemons(*SIM, config=config)
    first.wait_running()

    second = daemons(*SIM, "--no-api", config=config)
    assert second.wait_exit(timeout=60) == 3
    errors = [line for line in second.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, second.stderr
    assert errors[0].startswith("revaer: error: another Revaer daemon")
    assert f"revaer daemon {socket.gethostname()[:30]}:{first.pid}" in errors[0], errors[0]

    # Read-only access keeps working meanwhile: the CLI, and the first daemon's API.
    listed = revaer("torrents", "list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["items"]) == 5
    assert revaer("runtime", "status", config=config).returncode == 0
    assert len(httpx.get(f"{first.api_url}/v1/torrents", timeout=30).json()["items"]) == 5

    first.kill()  # SIGKILL: the lock goes with its session
    third = daemons(*SIM, "--no-api", config=config)
    third.wait_running()
    assert third.terminate() == 0, third.stderr


def left_by_an_older_release(daemons: Daemons, config: Path) -> None:
    """A schema a daemon filled, then downgraded to 0001: what an older release left."""
    first = daemons(*SIM, "--no-api", config=config)
    first.wait_running()
    assert first.terminate() == 0, first.stderr
    older = revaer("runtime", "downgrade", "0001", "--yes", config=config)
    assert older.returncode == 0, older.stderr


def test_an_older_revision_is_refused_with_the_command_then_migrated_with_data_intact(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    config = config_for(tmp_path, private_cluster)
    left_by_an_older_release(daemons, config)
    before = snapshot(private_cluster)
    assert ("alembic_version", "0001") in before and len(before) > 5

    refused = daemons(*SIM, "--no-api", config=config)
    assert refused.wait_exit(timeout=60) == 3
    assert "run `revaer runtime migrate`" in refused.stderr, refused.stderr
    assert snapshot(private_cluster) == before, "a refused daemon wrote to the schema"

    migrated = revaer("runtime", "migrate", config=config)
    assert migrated.returncode == 0, migrated.stderr
    after = snapshot(private_cluster)
    assert ("alembic_version", migrate.head()) in after
    assert _kept_rows(after, before) == [r for r in before if r[0] != "alembic_version"]
    again = daemons(*SIM, "--no-api", config=config)
    again.wait_running()
    assert "hydrated 5 torrent(s)" in again.stderr
    assert again.terminate() == 0, again.stderr


def test_an_older_revision_is_migrated_on_start_with_auto_migrate(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    config = config_for(tmp_path, private_cluster)
    left_by_an_older_release(daemons, config)
    auto = daemons(*SIM, "--no-api", config=config_for(tmp_path, private_cluster, auto_migrate=True))
    auto.wait_running()
    assert "hydrated 5 torrent(s)" in auto.stderr
    assert auto.terminate() == 0, auto.stderr
    assert revaer("runtime", "current", config=config).returncode == 0


def test_a_newer_unknown_revision_is_refused_and_never_written(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    config = config_for(tmp_path, private_cluster, auto_migrate=True)
    first = daemons(*SIM, "--no-api", config=config)
    first.wait_running()
    assert first.terminate() == 0, first.stderr
    with psycopg.connect(private_cluster.url) as connection:
        connection.execute(f'UPDATE "{SCHEMA}".alembic_version SET version_num = %s', ["0099_future"])
    before = snapshot(private_cluster)

    refused = daemons(*SIM, "--no-api", config=config)
    assert refused.wait_exit(timeout=60) == 3
    assert "upgrade revaer-runtime-pg; nothing was written" in refused.stderr, refused.stderr
    migrate_refused = revaer("runtime", "migrate", config=config)
    assert migrate_refused.returncode == 3 and "0099_future" in migrate_refused.stderr
    assert snapshot(private_cluster) == before
