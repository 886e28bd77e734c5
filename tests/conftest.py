"""Shared test configuration. Fixture modules live in tests/support/ and are listed here."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.support.stores",
    "tests.support.engine",
    "tests.support.surfaces",
    "tests.support.fsops",
    "tests.support.postgres",
    "tests.support.daemon",
]
