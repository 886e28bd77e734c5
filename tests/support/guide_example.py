"""The plugin-author guide's example plugin, as a module: the code in docs/plugin-authors.md, run as written."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

GUIDE = Path(__file__).parent.parent.parent / "docs" / "plugin-authors.md"


def example_source() -> tuple[str, str]:
    """The module name and code of the block that follows the guide's ``example:`` marker."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: (\w+)\.py -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the guide lost its example block"
    name, source = match.groups()
    return name, source


def example_module() -> ModuleType:
    """Import the guide's example as a module (once per process)."""
    name, source = example_source()
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclass-like decorators look modules up by name
    exec(compile(source, str(GUIDE), "exec"), module.__dict__)  # noqa: S102 - our own documentation
    return module
