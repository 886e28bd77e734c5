"""The product stands apart from its test harness.

The rule: no module of ``revaer_core`` outside ``testing/`` (the harness) and
``contract/`` (the conformance suite, which drives stores with the harness's
job helpers) imports ``revaer_core.testing``. The engine registry finds the
simulated engine by its module name when it is asked for by name, and says
what to install when the harness cannot be imported. ``revaer run``'s help is
about running the product; the ``--sim-*`` options and ``--event-log`` belong
to the harness's own ``python -m revaer_core.testing run``. The harness and
the benchmarks import nothing from ``tests/``: the harness ships in the
wheel, and the benchmarks run where no test suite is.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import revaer_core
from revaer_core import RuntimeStore
from revaer_core.cli import main
from revaer_core.engine.registry import SIMULATED_MODULE, open_engine
from revaer_core.errors import PluginError
from revaer_core.testing.cli import harness_main
from revaer_core.testing.simulated import SimulatedEngine

CORE = Path(revaer_core.__file__).parent
HARNESS = "revaer_core.testing"
#: Folders of revaer_core that are not the product: the harness itself and the conformance suite.
NOT_PRODUCT = ("testing", "contract")


def harness_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, import) for every import of the test harness in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == HARNESS or alias.name.startswith(f"{HARNESS}."):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module == HARNESS or node.module.startswith(f"{HARNESS}."):
                yield node.lineno, f"from {node.module} import ..."
            elif node.module == "revaer_core" and any(alias.name == "testing" for alias in node.names):
                yield node.lineno, "from revaer_core import testing"


PRODUCT = sorted(p for p in CORE.rglob("*.py") if p.relative_to(CORE).parts[0] not in NOT_PRODUCT)


@pytest.mark.parametrize("path", PRODUCT, ids=[str(p.relative_to(CORE)) for p in PRODUCT])
def test_a_product_module_imports_nothing_from_the_harness(path: Path) -> None:
    problems = [f"{path.relative_to(CORE)}:{line}: {what}" for line, what in harness_imports(path)]
    assert not problems, "\n".join(problems)


def test_every_product_module_is_checked() -> None:
    """The daemon, the CLI's run command, the registry and the demo are among the modules checked."""
    checked = {str(p.relative_to(CORE)) for p in PRODUCT}
    assert {"daemon.py", "cli/run.py", "engine/registry.py", "demo/__init__.py", "demo/seeder.py"} <= checked
    assert not any(name.startswith(("testing/", "contract/")) for name in checked)


def test_the_check_catches_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "import revaer_core.testing.simulated\n"
        "from revaer_core.testing.eventlog import EventLog\n"
        "from revaer_core import testing\n"
        "from revaer_core import RuntimeStore\n"
        "def later():\n"
        "    from revaer_core.testing import jobs\n",
        encoding="utf-8",
    )
    assert [line for line, _ in harness_imports(module)] == [1, 2, 3, 6]


def suite_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, import) for every import of the test suite's ``tests`` package in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "tests" or name.startswith("tests."):
                yield node.lineno, name


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
STANDALONE = sorted((CORE / "testing").rglob("*.py")) + sorted(BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("path", STANDALONE, ids=[p.name for p in STANDALONE])
def test_the_harness_and_the_benchmarks_import_nothing_from_the_tests(path: Path) -> None:
    assert not [f"{path.name}:{line}: {name}" for line, name in suite_imports(path)]


def test_the_suite_check_sees_the_benchmarks_and_catches_an_import(tmp_path: Path) -> None:
    assert {"persistence.py", "faults.py", "imports.py"} <= {p.name for p in STANDALONE}
    module = tmp_path / "bad.py"
    module.write_text("import tests.support.postgres\nfrom tests.support.daemon import x\nimport testsuite\n")
    assert [line for line, _ in suite_imports(module)] == [1, 2]


def test_revaer_run_help_is_about_the_product(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    product = capsys.readouterr().out
    assert "--no-api" in product
    assert "--sim-" not in product and "--event-log" not in product and "simulated" not in product
    assert main(["run", "--sim-torrents", "3"]) == 2
    assert "No such option '--sim-torrents'" in capsys.readouterr().err

    assert harness_main(["run", "--help"]) == 0  # where they went
    harness = capsys.readouterr().out
    for option in ("--sim-torrents", "--sim-files", "--sim-steps", "--sim-seed", "--sim-remove", "--event-log"):
        assert option in harness


def test_the_registry_finds_the_simulated_engine_only_with_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_engine("simulated", lambda payload: None, RuntimeStore.none())
    assert isinstance(engine, SimulatedEngine)

    monkeypatch.setitem(sys.modules, SIMULATED_MODULE, None)  # what an install without the harness looks like
    with pytest.raises(PluginError, match=r"test harness.*pip install 'revaer-core\[testing\]'"):
        open_engine("simulated", lambda payload: None, RuntimeStore.none())
