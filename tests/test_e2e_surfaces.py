"""After the daemon stops, the CLI and the stand-alone API still show its torrents and jobs from PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from revaer_core.testing.process import harness_argv
from revaer_core.testing.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TORRENTS = 4


def revaer(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "revaer_core", "--config", str(config), *args]


def cli_json(config: Path, *args: str) -> Any:
    result = subprocess.run(revaer(config, *args, "--json"), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a loopback URL we built
        return json.loads(response.read())


def test_cli_and_api_answer_from_the_store_after_the_daemon_stops(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    config = tmp_path / "revaer.toml"
    config.write_text(
        f"""
[runtime]
backend = "postgres"
data_dir = "{tmp_path / "data"}"
flush_interval_ms = 50

[runtime.postgres]
dsn = "{pg_url}"
schema = "{pg_schema}"

[engine]
download_dir = "{tmp_path / "downloads"}"

[fsops]
enabled = true
library_root = "{tmp_path / "library"}"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}
    daemon = subprocess.Popen(
        [
            *harness_argv(),
            "--config",
            str(config),
            "run",
            "--no-api",
            "--sim-torrents",
            str(TORRENTS),
            "--sim-steps",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:

        def every_job_finished() -> bool:
            listed = subprocess.run(
                revaer(config, "fsops", "jobs", "--json"), capture_output=True, text=True, timeout=60, check=False
            )  # exits 3 until the daemon has created the schema
            items = json.loads(listed.stdout)["items"] if listed.returncode == 0 else []
            return len(items) == TORRENTS and all(j["status"] in ("moved", "failed") for j in items)

        wait_for(every_job_finished, "a finished job for every simulated torrent")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)

    torrents = cli_json(config, "torrents", "list")["items"]
    assert len(torrents) == TORRENTS and {t["state"] for t in torrents} == {"completed"}
    jobs = cli_json(config, "fsops", "jobs")["items"]
    assert {j["torrent_id"] for j in jobs} == {t["id"] for t in torrents}
    shown = cli_json(config, "fsops", "show", jobs[0]["torrent_id"])
    assert shown["history"], "the job's history is empty"

    port = free_port()
    api = subprocess.Popen(
        revaer(config, "api", "--port", str(port)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return bool(get(f"{base}/health"))
            except OSError:
                return False

        wait_for(answers, "the stand-alone API")
        assert {t["id"] for t in get(f"{base}/v1/torrents")["items"]} == {t["id"] for t in torrents}
        assert {j["torrent_id"] for j in get(f"{base}/v1/fsops/jobs")["items"]} == {j["torrent_id"] for j in jobs}
        detail = get(f"{base}/v1/fsops/jobs/{jobs[0]['torrent_id']}")
        assert detail["history"] == shown["history"]
    finally:
        api.send_signal(signal.SIGINT)
        try:
            api.wait(timeout=15)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait(timeout=10)
