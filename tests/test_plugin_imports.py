"""Both plugins stand on the seam alone: every ``revaer_core`` name they import is one the package exports.

The rule: inside ``revaer_runtime_pg`` and ``revaer_runtime_memory``, the only
form of import from the core is ``from revaer_core import <name>``, with
``<name>`` in ``revaer_core.__all__``. No ``import revaer_core``, no
``revaer_core.<module>``: what a plugin may rely on is exactly what the core exports.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

import revaer_core

PLUGINS = ("revaer_runtime_pg", "revaer_runtime_memory")


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def core_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, problem) for every import of ``revaer_core`` in ``path`` that breaks the rule."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "revaer_core" or alias.name.startswith("revaer_core."):
                    yield node.lineno, f"import {alias.name} (write: from revaer_core import <name>)"
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module.startswith("revaer_core."):
                yield node.lineno, f"from {node.module} import ... (export it from revaer_core instead)"
            elif node.module == "revaer_core":
                for alias in node.names:
                    if alias.name not in revaer_core.__all__:
                        yield node.lineno, f"from revaer_core import {alias.name} (not in revaer_core.__all__)"


MODULES = [(package, path) for package in PLUGINS for path in sorted(package_dir(package).rglob("*.py"))]


@pytest.mark.parametrize(("package", "path"), MODULES, ids=[f"{p}:{m.relative_to(package_dir(p))}" for p, m in MODULES])
def test_a_plugin_imports_only_what_the_core_exports(package: str, path: Path) -> None:
    problems = [f"{path.name}:{line}: {what}" for line, what in core_imports(path)]
    assert not problems, "\n".join(problems)


def test_every_plugin_module_is_checked() -> None:
    """The parametrised test above sees every module: the migrations and the store among them."""
    names = {path.name for package, path in MODULES if package == "revaer_runtime_pg"}
    assert {"store.py", "commands.py", "options.py", "database.py", "env.py"} <= names
    assert any(package == "revaer_runtime_memory" for package, _ in MODULES)


def test_the_check_catches_a_deep_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "import revaer_core.settings\n"
        "from revaer_core.cli.context import CliContext\n"
        "from revaer_core import hookimpl, _private\n"
        "from . import sibling\n",
        encoding="utf-8",
    )
    assert [line for line, _ in core_imports(module)] == [1, 2, 3]


def test_every_export_exists() -> None:
    missing = [name for name in revaer_core.__all__ if not hasattr(revaer_core, name)]
    assert not missing
