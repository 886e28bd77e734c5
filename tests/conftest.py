"""Shared test configuration. Fixture modules live in tests/support/ and are listed here."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.support.postgres",  # first: the surfaces plugin imports it
    "tests.support.stores",
    "tests.support.engine",
    "tests.support.surfaces",
    "tests.support.fsops",
    "tests.support.daemon",
]
