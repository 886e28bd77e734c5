"""A DSN password never shows: not in the daemon's logs, its API answers, the CLI's output or its errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from revaer_core.testing.process import Daemons, revaer, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import PrivateCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSWORD = "pw-Zq81-hunter2"


def test_the_dsn_password_appears_in_no_output(
    private_cluster: PrivateCluster, tmp_path: Path, daemons: Daemons
) -> None:
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{private_cluster.port}/postgres"  # trust auth: accepted
    config = write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data")},
            "runtime.postgres": {"dsn": dsn, "connect_timeout_s": 2},
            "engine": {"download_dir": str(tmp_path / "downloads")},
            "api": {"host": "127.0.0.1", "port": 0},
        },
    )
    seen: list[str] = []
    daemon = daemons(
        "--sim-torrents",
        "5",
        "--sim-steps",
        "5000",
        config=config,
        env={"REVAER_DATABASE_URL": dsn},
    )
    daemon.wait_running()
    api = daemon.api_url

    def everything_the_api_says() -> None:
        for path in ("/health", "/metrics", "/v1/torrents", "/v1/fsops/jobs", "/openapi.json", "/v1/torrents/nope"):
            seen.append(httpx.get(f"{api}{path}", timeout=30).text)
        seen.append(httpx.post(f"{api}/v1/fsops/jobs/{'0' * 32}/retry", timeout=30).text)

    def everything_the_cli_says() -> None:
        for args in (["runtime", "status"], ["runtime", "status", "--json"], ["runtime", "check"],
                     ["runtime", "current"], ["torrents", "list"], ["--debug", "runtime", "status"],
                     ["--debug", "torrents", "list"]):  # fmt: skip
            done = revaer(*args, config=config)
            seen.extend((done.stdout, done.stderr))

    everything_the_api_says()
    everything_the_cli_says()
    private_cluster.stop()  # errors now: the store's, the writer's, the CLI's
    wait_for(lambda: daemon.health()["status"] == "degraded", "health to turn degraded", timeout=30)
    time.sleep(1.0)  # a few failed writes, each logged
    everything_the_api_says()
    everything_the_cli_says()
    unreachable = revaer("torrents", "list", config=config, env={"REVAER_DATABASE_URL": dsn.replace(
        str(private_cluster.port), "1")})  # fmt: skip
    seen.extend((unreachable.stdout, unreachable.stderr))
    private_cluster.start()
    wait_for(lambda: daemon.health()["status"] == "ok", "health to recover", timeout=60)
    assert daemon.terminate() == 0
    seen.append(daemon.output())

    everything = "\n".join(seen)
    assert "runtime store write failed" in everything and "127.0.0.1" in everything  # the errors were shown
    assert PASSWORD not in everything
    assert "hunter2" not in everything
