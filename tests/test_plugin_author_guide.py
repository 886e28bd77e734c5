"""The plugin-author guide tells the truth: its example plugin passes the conformance suite,
and every hook Revaer defines is documented there and in its spec."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from revaer_core import RuntimeStore
from revaer_core.contract import StoreContract
from revaer_core.contract.base import StoreOpener
from revaer_core.hookspecs import NAMESPACES

GUIDE = Path(__file__).parent.parent / "docs" / "plugin-authors.md"


def example_module() -> ModuleType:
    """Import the code block that follows the guide's ``example:`` marker as a module."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: (\w+)\.py -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the guide lost its example block"
    name, source = match.groups()
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclass-like decorators look modules up by name
    exec(compile(source, str(GUIDE), "exec"), module.__dict__)  # noqa: S102 - our own documentation
    return module


EXAMPLE = example_module()


class TestGuideExamplePlugin(StoreContract):
    @pytest.fixture
    def store_opener(self, tmp_path: Path) -> StoreOpener:
        return lambda: RuntimeStore.open(EXAMPLE.SQLiteStore(), name="sqlite", data_dir=tmp_path)


HOOKS = [(ns.__name__, name, fn) for ns in NAMESPACES for name, fn in inspect.getmembers(ns, inspect.isfunction)]


@pytest.mark.parametrize(("namespace", "name", "spec"), HOOKS, ids=[f"{ns}.{n}" for ns, n, _ in HOOKS])
def test_every_hook_is_specified_and_in_the_guide(namespace: str, name: str, spec: object) -> None:
    doc = inspect.getdoc(spec) or ""
    assert len(doc.splitlines()[0]) > 20, f"{namespace}.{name} needs a one-line summary"
    assert f"`{name}(" in GUIDE.read_text(encoding="utf-8"), f"{name} is missing from docs/plugin-authors.md"
    assert getattr(spec, "revaer_spec", None) is not None, f"{name} is not marked as a hook spec"


def test_the_guide_example_implements_every_store_hook() -> None:
    from revaer_core.plugins import implemented_hooks

    store_hooks = {name for ns, name, _ in HOOKS if ns != "RuntimeCommands"}
    assert set(implemented_hooks(EXAMPLE.SQLiteStore())) == store_hooks
