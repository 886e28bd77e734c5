"""Schemathesis against the real API processes: every check, every phase, and no failure.

Four servers, each a subprocess on loopback: the daemon of ``revaer run`` (the
test harness's, on the simulated engine, three torrents) and ``revaer api`` beside it, on the memory store and
on PostgreSQL. Each gets one ``st run`` with a fixed seed and a few examples
per operation, through the examples, coverage, fuzzing and stateful phases,
with the bearer token, so the writes reach the daemon. Every built-in check runs as
it is, except two that are narrowed in ``tests/support/schemathesis_hooks.py``
for answers the document states but JSON Schema cannot (a forged cursor, a
body that is not a torrent, the stand-alone API's 503s); each narrowing names
the operation, status and words it takes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from revaer_core.testing.process import DaemonProcess, Daemons, child_env, revaer_argv, write_config
from revaer_core.testing.waiting import wait_for
from tests.support.clients import free_port

pytestmark = [pytest.mark.slow]

TOKEN = "schemathesis-token"
SEED = 20261203
EXAMPLES = 4  #: per operation and phase: enough to reach every branch the document states, in well under a minute
#: The two checks run narrowed, as ``revaer_*`` in the hooks module; every other check runs as it is.
NARROWED = "not_a_server_error,positive_data_acceptance"
ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class Target:
    name: str
    url: str


def _api_process(config: Path, workdir: Path, env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``revaer api`` on a port of its own, once it answers."""
    port = free_port()
    err = (workdir / f"api-{port}.err").open("wb")
    process = subprocess.Popen(
        [*revaer_argv(), "--config", str(config), "api", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=err, env=child_env(env), cwd=workdir,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, (workdir / f"api-{port}.err").read_text()
        try:
            return httpx.get(f"{url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, "revaer api to answer", timeout=60)
    return process, url


def _servers(root: Path, runtime: dict[str, Any], daemons: Daemons) -> Generator[Target, None, None]:
    """``revaer run`` and then ``revaer api`` on the same store."""
    api_port = free_port()
    config = write_config(
        root / "revaer.toml",
        {
            **runtime,
            "engine": {"download_dir": str(root / "data" / "downloads")},
            "api": {"port": api_port, "token": TOKEN},
        },
    )
    daemon: DaemonProcess = daemons("--sim-torrents", "3", "--sim-steps", "100000",
                                    config=config)  # fmt: skip
    daemon.wait_running()
    yield Target(f"revaer run ({runtime['runtime']['backend']})", daemon.api_url)
    api, url = _api_process(config, root, {})
    try:
        yield Target(f"revaer api ({runtime['runtime']['backend']})", url)
    finally:
        api.terminate()
        api.wait(timeout=30)


def report_of(target: Target, workdir: Path) -> Path:
    """Where ``st run`` writes its ndjson events for ``target``: every check it ran, by name."""
    return workdir / f"{re.sub(r'[^a-z]+', '-', target.name)}.ndjson"


def schemathesis(target: Target, workdir: Path) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    argv = [
        str(st), "run", f"{target.url}/schema/openapi.json",
        "--checks", "all", "--exclude-checks", NARROWED,
        "--seed", str(SEED), "--max-examples", str(EXAMPLES), "--workers", "1", "--no-shrink",
        "--request-timeout", "10", "--header", f"Authorization: Bearer {TOKEN}",
        "--report", "ndjson", "--report-ndjson-path", str(report_of(target, workdir)),
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=workdir, timeout=300, check=False)


def _summary(output: str) -> str:
    """The failures section of an ``st run`` report (the whole report when it has none)."""
    match = re.search(r"={5,} FAILURES ={5,}.*", output, re.S)
    return match.group(0) if match else output[-6000:]


def test_schemathesis_finds_nothing_against_revaer_run_and_revaer_api(
    tmp_path: Path, pg_url: str, pg_schema: str, daemons: Daemons
) -> None:
    stores = {
        "memory": {"runtime": {"backend": "memory", "data_dir": str(tmp_path / "memory" / "data")}},
        "postgres": {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "postgres" / "data")},
            "runtime.postgres": {"dsn": pg_url, "schema": pg_schema},
        },
    }
    servers = [_servers(tmp_path / name, runtime, daemons) for name, runtime in stores.items()]
    for name in stores:
        (tmp_path / name).mkdir()
    try:
        targets = [next(s) for s in servers]  # both daemons first: revaer api then reads what they stored
        targets += [next(s) for s in servers]
        started = time.monotonic()
        with ThreadPoolExecutor(len(targets)) as pool:
            runs = list(pool.map(lambda t: (t, schemathesis(t, tmp_path)), targets))
        failed = {t.name: _summary(r.stdout + r.stderr) for t, r in runs if r.returncode != 0}
        assert not failed, "\n\n".join(f"--- {name}:\n{report}" for name, report in failed.items())
        for target, run in runs:  # every operation was tested, and the narrowed checks ran in place of the built-ins
            assert re.search(r"Selected: (\d+)/\1\s+Tested: \1", run.stdout), (target.name, run.stdout[-3000:])
            events = report_of(target, tmp_path).read_text(encoding="utf-8")
            for check in ("revaer_not_a_server_error", "revaer_positive_data_acceptance"):
                assert f'"{check}"' in events, f"{target.name}: {check} never ran (is SCHEMATHESIS_HOOKS loaded?)"
        print(f"schemathesis: {len(targets)} servers in {time.monotonic() - started:.1f} s")
    finally:
        for server in servers:
            server.close()
