"""glibc's malloc arenas, capped for the daemon: memory one thread freed serves the others.

glibc gives every thread that allocates an arena of its own, up to eight per
core, and memory freed in one arena is reused only by the threads of that
arena. The daemon's threads (libtorrent's, the alert thread, the store
writer, the API) each touched tens of MiB while a start restored 10,000
torrents, and kept them: the peak resident set grew with the number of
threads, not with what the daemon holds. With one arena they share what
was freed (about 25 MiB less at 10,000 torrents, two arenas saved 10), and
glibc's per-thread caches keep most small allocations off the arena's lock.

An operator's ``MALLOC_ARENA_MAX`` wins: glibc has read it already, and it is
left as set. Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os

#: glibc's ``mallopt`` parameter for the most arenas it creates (``malloc.h``).
M_ARENA_MAX = -8
#: Arenas the daemon runs with: the GIL serialises most of its allocation already.
DAEMON_ARENAS = 1


def limit_arenas(count: int = DAEMON_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``count`` for threads that allocate from now on.

    Returns whether the cap was set: ``False`` with ``MALLOC_ARENA_MAX`` in the
    environment, or with a C library that has no ``mallopt``.
    """
    if count < 1:
        raise ValueError(f"a process needs at least one malloc arena, not {count}")
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, count))
