"""With no PostgreSQL to be had, the tests that need one fail, saying how to give them one; none is skipped.

Each case runs pytest on one of our own test files in a child process that cannot get a server:
``REVAER_TEST_DATABASE_URL`` unset, no Docker engine, and no server binaries for a private cluster
(a plugin hides them). Only ``-m "not postgres"``, a choice made on purpose, leaves those tests out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.postgres import URL_ENV

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
#: Loaded with ``-p``: takes the server binaries away, as on a machine without PostgreSQL or pgserver.
NO_BINARIES = textwrap.dedent(
    """
    def pytest_configure(config):
        import revaer_runtime_pg.testing
        from revaer_core import StoreUnavailable

        def find_binaries(*args, **kwargs):
            raise StoreUnavailable("no PostgreSQL server binaries (hidden by the test)")

        revaer_runtime_pg.testing.find_binaries = find_binaries
    """
)


def _pytest_without_postgres(tmp_path: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "no_pg_binaries.py").write_text(NO_BINARIES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {URL_ENV, "CI", "PYTEST_ADDOPTS"}}
    env.update(DOCKER_HOST="unix:///nonexistent/docker.sock", PYTHONPATH=str(tmp_path), COLUMNS="1000")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no_pg_binaries", "-q", "-rfEs", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("ci", [False, True], ids=["outside-ci", "in-ci"])
def test_tests_that_need_postgresql_fail_with_one_line_saying_how_to_give_them_one(tmp_path: Path, ci: bool) -> None:
    # one test on the shared database (pg_url), one on a private cluster of its own
    run = _pytest_without_postgres(
        tmp_path,
        "tests/test_pg_startup.py::test_a_daemon_creates_an_empty_schema_but_a_client_refuses_it",
        "tests/test_pg_outage.py",
        ci=ci,
    )
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert "skipped" not in out.lower(), out
    reasons = [line for line in out.splitlines() if line.startswith(("ERROR ", "FAILED "))]
    assert reasons, out
    assert len(reasons) == 3, out
    for line in reasons:
        assert "no PostgreSQL for tests:" in line and '-m "not postgres"' in line, line
        if "test_pg_startup" in line:  # the shared database: a URL gives it one
            assert f"{URL_ENV} is not set; no Docker engine answers; no private cluster (" in line, line
            assert f"{URL_ENV}=postgresql://" in line, line
        else:  # a server of its own to stop: only binaries give it one
            assert "cannot make a private cluster (" in line and "server binaries" in line, line


def test_deselecting_them_on_purpose_leaves_only_tests_that_need_no_postgresql(tmp_path: Path) -> None:
    run = _pytest_without_postgres(tmp_path, "tests/test_watch_folder.py", "-m", "not postgres", ci=True)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert " passed" in out and " deselected" in out, out
    assert "skipped" not in out.lower() and "error" not in out.lower(), out
