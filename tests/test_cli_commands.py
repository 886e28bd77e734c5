"""The ``revaer`` command as installed: help on everything, the real entry point, and ``revaer api``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest

from revaer_core import RuntimeStore
from revaer_core.cli import cli
from revaer_core.settings import ApiSettings, Settings
from tests.support.surfaces import CliRunner


def commands(group: click.Group, path: str = "revaer") -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{path} {name}"
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")


OURS = ("revaer torrents", "revaer fsops", "revaer api")


@pytest.mark.parametrize("path", [p for p, _ in commands(cli) if p.startswith(OURS)])
def test_every_command_and_option_has_help(path: str) -> None:
    command = dict(commands(cli))[path]
    assert command.help and len(command.help.strip()) > 20, path
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{path} {param.opts[0]} has no help text"


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed ``revaer`` script when it is on PATH, else ``python -m revaer_core``."""
    script = shutil.which("revaer", path=str(Path(sys.executable).parent))
    argv = [script] if script else [sys.executable, "-m", "revaer_core"]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout, check=False
    )


def test_the_entry_point_lists_from_the_configured_store(tmp_path: Path) -> None:
    env = {"REVAER_RUNTIME_BACKEND": "memory", "REVAER_DATA_DIR": str(tmp_path)}
    listed = run("torrents", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"items": [], "next_cursor": None}
    jobs = run("fsops", "jobs", env=env)
    assert jobs.returncode == 0 and jobs.stdout.split() == [
        "TORRENT", "STATUS", "ATTEMPT", "MODE", "UPDATED", "DESTINATION", "LAST", "ERROR"
    ]  # fmt: skip


def test_the_entry_point_exit_codes(tmp_path: Path) -> None:
    env = {"REVAER_RUNTIME_BACKEND": "memory", "REVAER_DATA_DIR": str(tmp_path)}
    bad = run("torrents", "show", "nope", env=env)
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    missing_plugin = run("torrents", "list", env={**env, "REVAER_RUNTIME_BACKEND": "nosuch"})
    assert missing_plugin.returncode == 3 and missing_plugin.stderr.count("\n") == 1
    off_loopback = run("api", "--host", "0.0.0.0", env=env)  # noqa: S104 - refused, which is the point
    assert off_loopback.returncode == 2
    assert "api.token" in off_loopback.stderr and off_loopback.stderr.count("\n") == 1


def test_api_refuses_an_exposed_bind_without_a_token_before_it_opens_the_store(tmp_path: Path) -> None:
    """The token check is a settings error: it comes first, even when the store could not be opened at all."""
    env = {
        "REVAER_RUNTIME_BACKEND": "postgres",
        "REVAER_DATABASE_URL": "postgresql://revaer@127.0.0.1:1/none",  # nothing listens on port 1
        "REVAER_DATA_DIR": str(tmp_path),
    }
    assert run("torrents", "list", env=env).returncode == 3  # the store is unreachable indeed
    exposed = run("api", "--host", "0.0.0.0", "--port", "0", env=env)  # noqa: S104 - refused, which is the point
    assert exposed.returncode == 2, exposed.stderr
    assert exposed.stderr.startswith("revaer: error: api.token: required when the API listens on '0.0.0.0'")
    assert exposed.stderr.count("\n") == 1 and "127.0.0.1:1" not in exposed.stderr


def test_revaer_api_serves_the_store_until_stopped(tmp_path: Path) -> None:
    env = {
        "REVAER_RUNTIME_BACKEND": "memory",
        "REVAER_DATA_DIR": str(tmp_path),
        "REVAER_API_TOKEN": "api-token-xyz",
        "PYTHONUNBUFFERED": "1",
    }
    script = shutil.which("revaer", path=str(Path(sys.executable).parent))
    argv = [script] if script else [sys.executable, "-m", "revaer_core"]
    with subprocess.Popen(
        [*argv, "api", "--port", "0"], stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
    ) as process:
        try:
            assert process.stderr is not None
            banner = process.stderr.readline()
            match = re.search(r"on (http://127\.0\.0\.1:\d+)", banner)
            assert match, banner
            url = match.group(1)
            health = httpx.get(f"{url}/health", timeout=10).json()
            assert (health["status"], health["backend"]) == ("ok", "memory")
            assert httpx.get(f"{url}/v1/torrents", timeout=10).json() == {"items": [], "next_cursor": None}
            refused = httpx.post(f"{url}/v1/fsops/jobs/{'0' * 8}-0000-0000-0000-{'0' * 12}/retry", timeout=10)
            assert refused.status_code == 401
        finally:
            process.terminate()
            process.wait(timeout=30)
        assert "api-token-xyz" not in (process.stderr.read() if process.stderr else "")


def test_api_command_refuses_to_listen_off_loopback_without_a_token(
    capsys: pytest.CaptureFixture[str], store: RuntimeStore
) -> None:
    exposed = Settings(api=ApiSettings(host="0.0.0.0"))  # noqa: S104 - refused, which is the point
    result = CliRunner(capsys, store, exposed)("api")
    assert result.code == 2
    assert result.err.startswith("revaer: error: api.token: required when the API listens on '0.0.0.0'")
