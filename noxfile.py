"""Every developer task is a session here: ``nox -l`` lists them.

Sessions install the three distributions from this checkout, so a fresh
clone needs nothing but Python and nox (``pip install 'nox[uv]'``).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = True

PACKAGES = ["revaer_core", "revaer_runtime_memory", "revaer_runtime_pg"]
SOURCES = [f"{p}/src" for p in PACKAGES]
PROJECT = [
    "-e",
    "revaer_core[testing,libtorrent,api]",
    "-e",
    "revaer_runtime_memory",
    "-e",
    "revaer_runtime_pg[embedded]",
]
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100", "httpx>=0.27", "mypy>=1.13", "schemathesis>=4.0"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules, then formatting (check only; `nox -s fmt` rewrites)."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def fmt(session: nox.Session) -> None:
    """Rewrite the code in ruff's format and apply ruff's safe fixes."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over our packages and the tests."""
    session.install(*PROJECT, *TEST_TOOLS, "nox")  # TEST_TOOLS has mypy: a test type-checks the guide
    session.run("mypy", *SOURCES, "tests", "benchmarks", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (pass pytest options after --)."""
    session.install(*PROJECT, *TEST_TOOLS)
    session.run("pytest", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: download over loopback, FsOps into a library, restart, show what survived.

    Runs on the embedded PostgreSQL store (no server to set up); ``-- --dir PATH`` moves it.
    """
    session.install(*PROJECT)
    session.run("revaer", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Persistence benchmarks, printed as ratios against baselines measured in the same run.

    Uses $REVAER_BENCH_DATABASE_URL, else $REVAER_TEST_DATABASE_URL, else a private
    PostgreSQL cluster; ``-- --quick`` runs a smaller version.
    """
    session.install(*PROJECT)
    session.run("python", "benchmarks/persistence.py", *session.posargs)


@nox.session
def openapi(session: nox.Session) -> None:
    """Regenerate docs/openapi.json from the API app; tests/test_api_openapi.py fails while it is stale."""
    session.install(*PROJECT)
    session.run("python", "-m", "revaer_core.api.openapi", "docs/openapi.json")


@nox.session
def ci(session: nox.Session) -> None:
    """Everything CI runs: lint, typecheck, tests."""
    for name in ("lint", "typecheck", "tests"):
        session.notify(name)
