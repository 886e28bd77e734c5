"""The daemon's malloc arena cap: threads share glibc's arenas, and an operator's MALLOC_ARENA_MAX is left as set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from revaer_core.arenas import limit_arenas

#: Four threads allocate at once, then glibc's malloc_info says how many arenas (``<heap nr=...>``) there are.
_PROBE = """
import ctypes, sys, threading
from revaer_core.arenas import limit_arenas
print("capped" if (limit_arenas(1) if sys.argv[2] == "cap" else False) else "uncapped")
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
start = threading.Barrier(4)
def allocate():
    start.wait()
    for _ in range(200):
        libc.malloc(4096)
threads = [threading.Thread(target=allocate) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, (ctypes.c_char_p, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
out = libc.fopen(sys.argv[1].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
print(open(sys.argv[1]).read().count("<heap nr="))
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only"
)


def _arenas(tmp_path: Path, mode: str, env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / f"malloc-{mode}.xml"), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    said, heaps = done.stdout.split()
    return said, int(heaps)


def test_capped_threads_share_one_arena_where_each_would_get_its_own(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _arenas(tmp_path, "cap", env) == ("capped", 1)
    said, heaps = _arenas(tmp_path, "free", env)
    assert said == "uncapped" and heaps > 1, "without the cap each allocating thread gets an arena of its own"


def test_an_operators_malloc_arena_max_is_left_as_set(tmp_path: Path) -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "3"}
    said, heaps = _arenas(tmp_path, "cap", env)
    assert said == "uncapped"
    assert heaps == 3, "glibc's own reading of the variable stands: three arenas for the four threads and main"


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one malloc arena"):
        limit_arenas(0)
