"""A store's error text reaches neither a problem document nor a CLI line: both name the log line that has it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Words of the store's error that must stay in the log.
STORE_WORDS = ("SELECT", "UndefinedColumn", "does not exist", "LINE ", "name_gone")


def revaer(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "revaer_core", "--config", str(config), *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_store_error_is_logged_under_an_incident_id_that_the_answer_names(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    config = tmp_path / "revaer.toml"
    config.write_text(
        f'[runtime]\nbackend = "postgres"\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[runtime.postgres]\ndsn = "{pg_url}"\nschema = "{pg_schema}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}
    subprocess.run(revaer(config, "runtime", "migrate"), check=True, capture_output=True, env=env, timeout=60)
    with psycopg.connect(pg_url, autocommit=True) as connection:  # a schema damaged by hand: every listing fails
        connection.execute(f'ALTER TABLE "{pg_schema}".torrents RENAME COLUMN name TO name_gone')

    listed = subprocess.run(revaer(config, "torrents", "list"), capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 3
    (line,) = listed.stderr.strip().splitlines()
    incident = re.search(r"incident ([0-9a-f]{12})", line)
    assert incident is not None, line
    assert not [w for w in STORE_WORDS if w in line], line

    debug = subprocess.run(
        revaer(config, "--debug", "torrents", "list"), capture_output=True, text=True, env=env, timeout=60
    )
    found = re.search(r"incident ([0-9a-f]{12})", debug.stderr.strip().splitlines()[-1])
    assert found is not None
    logged = [x for x in debug.stderr.splitlines() if f"incident {found.group(1)}: runtime store failed" in x]
    assert logged and ("name_gone" in logged[0] or "does not exist" in logged[0]), debug.stderr

    port = free_port()
    api = subprocess.Popen(
        revaer(config, "api", "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        answer: tuple[int, bytes] | None = None
        deadline = time.monotonic() + 30
        while answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/torrents", timeout=5) as ok:
                    answer = (ok.status, ok.read())
            except urllib.error.HTTPError as exc:
                answer = (exc.code, exc.read())
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "revaer api did not start"
                time.sleep(0.1)
    finally:
        api.terminate()
        _, log = api.communicate(timeout=30)
    assert answer[0] == 503
    body = json.loads(answer[1])
    assert re.fullmatch(r"[0-9a-f]{12}", body["incident"]) and body["incident"] in body["detail"]
    assert not [w for w in STORE_WORDS if w in json.dumps(body)], body
    lines = [x for x in log.splitlines() if f"incident {body['incident']}:" in x]
    assert len(lines) == 1 and ("does not exist" in lines[0] or "name_gone" in lines[0]), log
