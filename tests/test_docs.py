"""The docs point at tests that exist: a renamed test must not leave a guarantee unproven."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)")
CITED = sorted(set(NODE.findall((ROOT / "docs" / "reliability.md").read_text(encoding="utf-8"))))


def test_the_reliability_doc_cites_tests() -> None:
    assert len(CITED) > 20


@pytest.mark.parametrize(("path", "name"), CITED, ids=[f"{p}::{n}" for p, n in CITED])
def test_every_cited_test_exists(path: str, name: str) -> None:
    source = (ROOT / path).read_text(encoding="utf-8")
    assert re.search(rf"^\s*def {name}\(", source, re.MULTILINE), f"{path} has no test {name}"
