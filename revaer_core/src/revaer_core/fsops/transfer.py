"""Putting one file into the library: copy, move or hardlink, never over a different file.

Each operation is safe to repeat after a crash: a copy is written to a
``.<name>.revaer-partial`` file, fsynced and renamed into place, so the target
is either absent or complete; a target that already holds the same bytes
counts as done.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import itertools
import os
import shutil
import stat
from pathlib import Path

from revaer_core.fsops.errors import FsOpsError, describe_os_error
from revaer_core.jobs import TransferMode

PARTIAL_SUFFIX = ".revaer-partial"


def numbered(name: str, n: int) -> str:
    """``movie.mkv`` -> ``movie (n).mkv``; the form every collision takes."""
    stem, dot, suffix = name.rpartition(".")
    if not stem:  # no suffix, or a dotfile such as ".nfo"
        return f"{name} ({n})"
    return f"{stem} ({n}){dot}{suffix}"


def same_content(a: Path, b: Path) -> bool:
    """Whether two regular files hold the same bytes (one file under two names counts)."""
    try:
        sa, sb = os.stat(a, follow_symlinks=False), os.stat(b, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode)) or sa.st_size != sb.st_size:
        return False
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    return filecmp.cmp(a, b, shallow=False)


def choose_target(wanted: Path, origin: Path, taken: set[Path]) -> Path:
    """``wanted``, or the first of ``name (2)``, ``name (3)``... that is free or already holds ``origin``'s bytes.

    Deterministic for the same library contents; ``taken`` holds targets this job already chose.
    """
    for n in itertools.count(1):
        candidate = wanted if n == 1 else wanted.with_name(numbered(wanted.name, n))
        if candidate in taken:
            continue
        if not os.path.lexists(candidate):
            return candidate
        if same_content(origin, candidate):
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}{PARTIAL_SUFFIX}")


def copy_file(origin: Path, target: Path) -> None:
    """Copy through a fsynced partial file renamed into place; the partial never survives a failure."""
    tmp = _partial(target)
    try:
        shutil.copyfile(origin, tmp, follow_symlinks=False)
        st = os.stat(origin)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.lexists(target):
            raise FsOpsError(f"{target} appeared while FsOps was copying to it; not overwritten")
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise describe_os_error(exc, target, f"copying {origin} to") from None
    except BaseException:
        _discard(tmp)
        raise


def move_file(origin: Path, target: Path) -> None:
    """Rename on one filesystem; copy then delete the original across filesystems."""
    if os.path.lexists(target):
        raise FsOpsError(f"{target} appeared while FsOps was moving to it; not overwritten")
    try:
        os.rename(origin, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise describe_os_error(exc, target, f"moving {origin} to") from None
    copy_file(origin, target)
    try:
        os.unlink(origin)
    except OSError as exc:
        raise describe_os_error(exc, origin, "removing the moved original") from None


def link_file(origin: Path, target: Path) -> None:
    """Hardlink ``target`` to ``origin``; a clear error when they are on different filesystems."""
    try:
        os.link(origin, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise FsOpsError(
                f"hardlink mode needs the download and the library on one filesystem: cannot link {origin} "
                f"to {target}; use transfer_mode 'copy' or 'move'"
            ) from None
        if exc.errno == errno.EEXIST:
            raise FsOpsError(f"{target} appeared while FsOps was linking to it; not overwritten") from None
        raise describe_os_error(exc, target, f"hardlinking {origin} to") from None


def place(origin: Path, target: Path, mode: TransferMode) -> bool:
    """Put ``origin`` at ``target`` by ``mode``; ``False`` when it was already there (a resumed job).

    ``target`` must have been chosen by :func:`choose_target`: an existing
    target with other bytes is an error, never overwritten.
    """
    if not os.path.lexists(origin):
        if os.path.lexists(target):
            return False  # moved by the interrupted run
        raise FsOpsError(f"source file {origin} vanished before it was transferred")
    if os.path.lexists(target):
        if not same_content(origin, target):
            raise FsOpsError(f"{target} already holds a different file; not overwritten")
        if mode is TransferMode.MOVE:
            _remove(origin)
        return False
    match mode:
        case TransferMode.COPY:
            copy_file(origin, target)
        case TransferMode.MOVE:
            move_file(origin, target)
        case TransferMode.HARDLINK:
            link_file(origin, target)
    return True


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise describe_os_error(exc, path, "removing the moved original") from None


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
