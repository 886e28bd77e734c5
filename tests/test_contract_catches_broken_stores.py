"""The conformance suite fails stores that lose data or break the rules, and passes the honest one.

tests/support/broken_stores.py holds the guide's SQLite store and four broken
versions of it, each a contract test class. This runs that module in a pytest
of its own and reads the outcome of every test from its JUnit report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support.broken_stores import BROKEN

ROOT = Path(__file__).parent.parent
MODULE = ROOT / "tests" / "support" / "broken_stores.py"
#: A plain pytest run: no shuffling, no cache written.
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A folder for the run's stores: in memory where the machine has one (SQLite commits cost an fsync on disk)."""
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a fresh folder only we can enter
    folder = Path(tempfile.mkdtemp(prefix="revaer-broken-", dir=shm if shm.is_dir() else None))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def outcomes(scratch: Path) -> Mapping[str, Mapping[str, str]]:
    """Test class name -> test name -> "passed", "failed" or "skipped"."""
    report = scratch / "report.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [*PYTEST, f"--basetemp={scratch / 'tmp'}", f"--junitxml={report}", str(MODULE)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert report.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - the report our own run just wrote
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        found[case.get("classname", "").rsplit(".", 1)[-1]][case.get("name", "")] = outcome
    return found


def test_the_honest_store_passes_every_test(outcomes: Mapping[str, Mapping[str, str]]) -> None:
    honest = outcomes["TestHonest"]
    assert len(honest) > 60, f"only {len(honest)} tests ran"
    assert [name for name, outcome in honest.items() if outcome == "failed"] == []


@pytest.mark.parametrize(("broken", "catcher"), [(k, v[1]) for k, v in BROKEN.items()], ids=list(BROKEN))
def test_the_suite_fails_a_broken_store(outcomes: Mapping[str, Mapping[str, str]], broken: str, catcher: str) -> None:
    results = outcomes[broken]
    assert len(results) == len(outcomes["TestHonest"]), "every class runs the same suite"
    assert results.get(catcher) == "failed", f"{catcher} did not catch {broken}: {results.get(catcher)}"
