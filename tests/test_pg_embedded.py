"""Embedded mode: backend postgres and no DSN runs a private server under the data dir, across restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from revaer_runtime_pg.embedded import CLUSTER_DIR, Postmaster, server_user_can_run
from tests.support.fsops import shared_tmp
from tests.support.postgres import as_root_only, private_pgserver

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# One process of the daemon's life: open the store the settings select, do one thing, exit.
SCRIPT = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")  # what the embedded server says
    from revaer_core import StoreRole
    from revaer_core.contract import samples
    from revaer_core.plugins import open_store
    from revaer_core.settings import load_settings
    from revaer_core.testing.jobs import job_started

    store = open_store(load_settings().runtime, StoreRole.DAEMON)
    if sys.argv[1] == "write":
        store.upsert_torrents([samples.status(n) for n in range(3)])
        job_started(store, samples.status(0).id, "/downloads/x")
    elif sys.argv[1] == "write-and-die":
        store.upsert_torrents([samples.status(7)])
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    print(sorted(s.name for s in store.load_torrents()))
    print(store.health().facts["mode"], len(store.job_history(samples.status(0).id)))
    store.close()
    """
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir the ``postgres`` user can reach when the tests run as root; its server stopped after."""
    root = shared_tmp("revaer-embedded-")
    yield root
    running = Postmaster.read(root / CLUSTER_DIR)
    if running is not None:
        os.kill(running.pid, signal.SIGINT)  # fast shutdown of a server a killed process left
        deadline = time.monotonic() + 20
        while Postmaster.read(root / CLUSTER_DIR) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _daemon(data_dir: Path, *args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one process of the daemon's life; with ``site``, its ``pgserver`` is the one found there."""
    env = {k: v for k, v in os.environ.items() if k not in {"REVAER_DATABASE_URL", "REVAER_CONFIG"}}
    env.update(REVAER_RUNTIME_BACKEND="postgres", REVAER_DATA_DIR=str(data_dir))
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120, cwd=data_dir
    )


def test_embedded_server_keeps_data_across_process_restarts(data_dir: Path) -> None:
    first = _daemon(data_dir, "write")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["['torrent-00000', 'torrent-00001', 'torrent-00002']", "embedded 1"]
    assert Postmaster.read(data_dir / CLUSTER_DIR) is None, "the process that started the server stops it"

    second = _daemon(data_dir, "read")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == first.stdout.splitlines()


def test_a_server_left_by_a_killed_process_is_reused(data_dir: Path) -> None:
    killed = _daemon(data_dir, "write-and-die")
    assert killed.returncode == -signal.SIGKILL
    left = Postmaster.read(data_dir / CLUSTER_DIR)
    assert left is not None, "a killed daemon cannot stop its server"

    after = _daemon(data_dir, "read")
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines()[0] == "['torrent-00007']"
    still = Postmaster.read(data_dir / CLUSTER_DIR)
    assert still is not None and still.pid == left.pid, "a server this process did not start is left running"


@as_root_only
def test_the_embedded_server_starts_from_a_venv_postgres_cannot_read(data_dir: Path, tmp_path: Path) -> None:
    site = private_pgserver(tmp_path / "home")
    assert not server_user_can_run(site / "pgserver" / "pginstall" / "bin"), "meant to be out of postgres' reach"

    first = _daemon(data_dir, "write", site=site)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "['torrent-00000', 'torrent-00001', 'torrent-00002']"
    said = [line for line in first.stderr.splitlines() if "the 'postgres' user cannot read" in line]
    assert len(said) == 1 and str(site / "pgserver") in said[0], first.stderr  # one line, saying what it did
    assert "revaer_runtime_pg.embedded: embedded PostgreSQL: running " in said[0]

    second = _daemon(data_dir, "read", site=site)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == first.stdout.splitlines()
