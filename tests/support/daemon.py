"""The ``daemons`` fixture: daemon subprocesses for a test, every one still running killed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from revaer_core.testing.process import Daemons


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    made = Daemons(tmp_path)
    try:
        yield made
    finally:
        made.kill_all()
