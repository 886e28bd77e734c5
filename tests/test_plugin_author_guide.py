"""The plugin-author guide tells the truth: its example plugin passes the conformance suite,
type-checks with ``mypy --strict`` against the installed packages, and every hook Revaer
defines is documented there and in its spec."""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from revaer_core import RuntimeStore, StoreRole
from revaer_core.contract import StoreContract
from revaer_core.contract.base import StoreOpener
from revaer_core.hookspecs import NAMESPACES
from tests.support.guide_example import GUIDE, example_module, example_source

EXAMPLE = example_module()


class TestGuideExamplePlugin(StoreContract):
    @pytest.fixture
    def store_opener(self, tmp_path: Path) -> StoreOpener:
        def open_store(*, options: Mapping[str, Any] | None = None, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
            return RuntimeStore.open(
                EXAMPLE.SQLiteStore(), name="sqlite", options=options, data_dir=tmp_path, role=role
            )

        return open_store

    @pytest.fixture
    def bad_options(self) -> Sequence[Mapping[str, Any]]:
        return [{"paht": "typo.sqlite3"}, {"path": 42}]


HOOKS = [(ns.__name__, name, fn) for ns in NAMESPACES for name, fn in inspect.getmembers(ns, inspect.isfunction)]


@pytest.mark.parametrize(("namespace", "name", "spec"), HOOKS, ids=[f"{ns}.{n}" for ns, n, _ in HOOKS])
def test_every_hook_is_specified_and_in_the_guide(namespace: str, name: str, spec: object) -> None:
    doc = inspect.getdoc(spec) or ""
    assert len(doc.splitlines()[0]) > 20, f"{namespace}.{name} needs a one-line summary"
    assert f"#### `{name}(" in GUIDE.read_text(encoding="utf-8"), f"{name} has no reference entry in the guide"
    assert getattr(spec, "revaer_spec", None) is not None, f"{name} is not marked as a hook spec"


@pytest.mark.parametrize(("namespace", "name", "spec"), HOOKS, ids=[f"{ns}.{n}" for ns, n, _ in HOOKS])
def test_every_hook_documents_its_arguments_and_result(namespace: str, name: str, spec: Any) -> None:
    """A plugin author implements a hook from its docstring alone; ``firstresult`` only where a result counts."""
    doc = inspect.getdoc(spec) or ""
    arguments = [p for p in inspect.signature(spec).parameters if p != "self"]
    assert [a for a in arguments if f":param {a}:" not in doc] == [], f"{name}: document every argument"
    assert ":returns:" in doc, f"{name}: say what it returns"
    returns_none = inspect.signature(spec).return_annotation in (None, "None")
    assert spec.revaer_spec.get("firstresult", False) is not returns_none, (
        f"{name}: firstresult belongs on hooks that return a value, and only on them"
    )


def test_the_guide_example_implements_every_store_hook() -> None:
    from revaer_core.plugins import implemented_hooks

    store_hooks = {name for ns, name, _ in HOOKS if ns != "RuntimeCommands"}
    assert set(implemented_hooks(EXAMPLE.SQLiteStore())) == store_hooks


#: Uses the two runtime distributions' public classes, so their py.typed markers are checked too.
USES_OUR_PLUGINS = """\
from revaer_runtime_memory.store import MemoryStore
from revaer_runtime_pg.options import PgOptions, parse_options


def options() -> PgOptions:
    return parse_options({"pool_size": 2}, env={})


def store() -> MemoryStore:
    return MemoryStore()
"""


def test_the_guide_example_type_checks_strictly_outside_the_tree(tmp_path: Path) -> None:
    """A plugin author runs ``mypy --strict`` against Revaer as installed, not against our sources.

    So mypy runs in an empty folder (no pyproject.toml or mypy.ini of ours is found,
    and ``--config-file=`` turns off a user's own), with no MYPYPATH: the only way
    to our packages is site-packages, where the editable installs' .pth files point
    at the src folders. Without py.typed there, every import is ``import-untyped``.
    """
    name, source = example_source()
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    (tmp_path / "uses_our_plugins.py").write_text(USES_OUR_PLUGINS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"MYPYPATH", "PYTHONPATH"}}
    mypy = [sys.executable, "-m", "mypy", "--strict", "--config-file=", "--cache-dir", str(tmp_path / ".mypy_cache")]
    command = [*mypy, f"{name}.py", "uses_our_plugins.py"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert "No module named mypy" not in output, "mypy must be installed with the tests (noxfile.py TEST_TOOLS)"
    assert "import-untyped" not in output and "import-not-found" not in output, output
    assert result.returncode == 0, output


@pytest.mark.parametrize("package", ["revaer_core", "revaer_runtime_memory", "revaer_runtime_pg"])
def test_every_distribution_is_marked_typed(package: str) -> None:
    """PEP 561: the marker sits next to the package's ``__init__.py``, where an installed wheel has it too."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").is_file()
