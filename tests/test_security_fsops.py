"""FsOps with fuzzed hostile torrent names and file paths: nothing is ever written outside the library root.

The named cases (``..``, absolute paths, symlinks, archives) are in tests/test_fsops_safety.py; this adds
generated ones, each run against a fresh download dir, library and sentinel folder.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from revaer_core import RuntimeStore
from revaer_core.fsops.service import FsOpsService
from tests.support.fsops import FAST, make_layout, run, status, tree

PIECES = ["..", ".", "/", "\\", "a", "b.mkv", "\x00", "~", "C:", "outside", " ", ".revaer"]
names = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)


@given(name=names, paths=st.lists(names, max_size=3))
@settings(max_examples=60, deadline=None)
def test_fuzzed_names_and_paths_write_nothing_outside_the_library(name: str, paths: list[str]) -> None:
    with tempfile.TemporaryDirectory() as temp:
        layout = make_layout(Path(temp))
        payload = layout.downloads / "payload"  # real data some hostile name might reach for
        payload.mkdir()
        (payload / "data.bin").write_bytes(b"data")
        service = FsOpsService(
            layout.settings(),
            RuntimeStore.none(),
            journal_dir=layout.journal,
            source_roots=(layout.downloads,),
            backoff=FAST,
        )
        try:
            before = {k: v for k, v in tree(layout.root).items() if not k.startswith(("library/", "data/fsops/"))}
            run(service, status(uuid.uuid4(), name, layout.downloads, files=paths or None))
            after = {k: v for k, v in tree(layout.root).items() if not k.startswith(("library/", "data/fsops/"))}
        finally:
            service.close(deadline=2.0)
        assert after == before, f"FsOps changed files outside the library for name {name!r}, paths {paths!r}"
        for path in layout.library.rglob("*"):
            assert path.resolve().is_relative_to(layout.library.resolve()), path
