"""A password-protected role (scram-sha-256): the right password works, a wrong one is one line and exit 3 everywhere.

The password must appear in no output: not on stdout, not in the error line,
not in the daemon's log (its stderr), whichever command met it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from revaer_core.testing.process import harness_argv
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import PrivateCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RIGHT = "r1ght-Horse-Battery"
WRONG = "wr0ng-Staple-Secret"

#: Commands that open the store and stop (``revaer run`` is started apart: it keeps running when all is well).
COMMANDS = [["runtime", "status"], ["torrents", "list"], ["fsops", "jobs"], ["runtime", "current"]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with PrivateCluster(role_password=RIGHT) as running:
        yield running


def setup(tmp_path: Path, cluster: PrivateCluster, password: str) -> tuple[list[str], dict[str, str]]:
    config = tmp_path / "revaer.toml"
    config.write_text(
        f'[runtime]\nbackend = "postgres"\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[runtime.postgres]\nschema = "pw_{tmp_path.name[-8:].replace("-", "_")}"\nauto_migrate = true\n\n'
        f'[engine]\ndownload_dir = "{tmp_path / "downloads"}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}
    env["REVAER_DATABASE_URL"] = cluster.role_url(password)  # the password comes in by the environment
    return [sys.executable, "-m", "revaer_core", "--config", str(config)], env


def run(base: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def assert_one_line_about_the_password(result: subprocess.CompletedProcess[str], what: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 3, (what, output)
    assert RIGHT not in output and WRONG not in output, (what, output)
    errors = [line for line in result.stderr.splitlines() if line.startswith("revaer: error:")]
    assert len(errors) == 1, (what, output)
    assert "password authentication failed" in errors[0] and "revaer_app@127.0.0.1" in errors[0], errors
    assert "Traceback" not in output


def test_the_right_password_works(cluster: PrivateCluster, tmp_path: Path) -> None:
    base, env = setup(tmp_path, cluster, RIGHT)
    migrated = run(base, env, "runtime", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    for args in COMMANDS:
        result = run(base, env, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert RIGHT not in result.stdout + result.stderr
    daemon = subprocess.Popen(
        [*harness_argv(), *base[3:], "run", "--sim-torrents", "2", "--no-api"],  # base[3:]: its --config
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        wait_for(
            lambda: run(base, env, "torrents", "list", "--json").stdout.count('"id"') >= 2, "the daemon's rows", 90
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert RIGHT not in out + err


def test_a_wrong_password_is_one_line_and_exit_3_from_every_command(cluster: PrivateCluster, tmp_path: Path) -> None:
    base, env = setup(tmp_path, cluster, WRONG)
    for args in [*COMMANDS, ["runtime", "migrate"], ["api", "--port", "0"], ["run"]]:
        assert_one_line_about_the_password(run(base, env, *args), " ".join(args))
    debug = run(base, env, "--debug", "torrents", "list")  # tracebacks too are redacted
    assert debug.returncode != 0 and "password authentication failed" in debug.stderr
    assert WRONG not in debug.stdout + debug.stderr


def test_a_wrong_password_in_the_settings_file_is_never_shown(cluster: PrivateCluster, tmp_path: Path) -> None:
    base, env = setup(tmp_path, cluster, WRONG)
    del env["REVAER_DATABASE_URL"]
    config = Path(base[-1])
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[runtime.postgres]\n", f'[runtime.postgres]\ndsn = "{cluster.role_url(WRONG)}"\n'
        ),
        encoding="utf-8",
    )
    for args in (["runtime", "status"], ["api", "--port", "0"], ["run"]):
        assert_one_line_about_the_password(run(base, env, *args), " ".join(args))
