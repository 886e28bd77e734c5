"""``revaer demo``, the README's first command, as a newcomer runs it: a real process, exit 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory the embedded server's user can reach (pytest's own tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="revaer-demo-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_demo_survives_its_restart(open_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}  # the embedded default
    root = open_dir / "demo"
    tmp_path = open_dir
    result = subprocess.run(
        [sys.executable, "-m", "revaer_core", "demo", "--dir", str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The state survived the restart." in result.stderr
    assert "the engine restored 1 torrent(s) from the stored resume data" in result.stderr
    assert "Traceback" not in result.stderr
    library = root / "library" / "Revaer Demo (2026)"
    assert (library / "Revaer.Demo.2026.mkv").stat().st_size == 6 * 1024 * 1024
    assert not (library / "Sample").exists(), "the skip_extras preset let the sample through"

    listed = subprocess.run(
        [sys.executable, "-m", "revaer_core", "--config", str(root / "revaer.toml"), "torrents", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "Revaer Demo (2026)" in listed.stdout and "completed" in listed.stdout
