"""Fake installed distributions: real entry-point metadata in a directory on sys.path.

importlib.metadata finds a ``*.dist-info`` folder on any path entry, so a test
can "install" a plugin (working or broken) without pip, and a subprocess sees it
through PYTHONPATH.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def fake_distribution(
    root: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
) -> Path:
    """Write ``dist``'s metadata (``revaer.runtime`` entry points) and its modules under ``root``."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[revaer.runtime]\n{lines}\n", encoding="utf-8")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return root
