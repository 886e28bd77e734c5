"""Zip and tar extraction that trusts nothing inside the archive.

Every member is checked before anything is written: names go through
:func:`safe_relative` (no ``..``, no absolute paths, no NUL); links, devices
and FIFOs are refused; tar members also pass tarfile's ``data`` filter as a
second line of defence where the Python has it (3.11.4 and later). Members are then written one by one with exclusive
creates, under a directory the caller owns, so nothing lands outside it.
"""

from __future__ import annotations

import functools
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from revaer_core.fsops.errors import FsOpsError, UnsafePath, describe_os_error
from revaer_core.fsops.paths import archive_suffix, join_inside, safe_relative

_CHUNK = 1 << 20

#: tarfile's ``data`` filter, from Python 3.11.4 on (Debian 12's 3.11.2 lacks it): where it is
#: missing the checks of :func:`_tar_members` stand alone, as they do everywhere anyway.
_DATA_FILTER: Callable[[tarfile.TarInfo, str], object] | None = getattr(tarfile, "data_filter", None)

Opener = Callable[[], IO[bytes]]


def extract_archive(archive: Path, into: Path) -> list[PurePosixPath]:
    """Extract the regular files of ``archive`` under ``into``; returns their relative paths, sorted."""
    suffix = archive_suffix(archive.name)
    if suffix is None:
        raise FsOpsError(f"{archive} is not an archive FsOps extracts (zip, tar, tar.gz)")
    with _reading(archive) as members:
        total = sum(size for _, size, _ in members)
        into.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(into).free
        if total > free:
            raise FsOpsError(f"disk full: extracting {archive} needs {total} bytes, {into} has {free} free")
        written: list[PurePosixPath] = []
        for rel, _, opener in members:
            target = join_inside(into, rel, f"archive {archive.name}: member")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with opener() as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            except FileExistsError:
                raise UnsafePath(f"archive {archive}: member {str(rel)!r} appears twice; refused") from None
            except OSError as exc:
                raise describe_os_error(exc, target, "extracting") from None
            written.append(rel)
    return sorted(written)


Member = tuple[PurePosixPath, int, Opener]


@contextmanager
def _reading(archive: Path) -> Iterator[list[Member]]:
    """The checked file members of ``archive`` (path, size, opener), while it is open."""
    try:
        if archive_suffix(archive.name) == ".zip":
            with zipfile.ZipFile(archive) as zf:
                yield _zip_members(archive, zf)
        else:
            with tarfile.open(archive, "r:*") as tf:
                yield _tar_members(archive, tf)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise FsOpsError(f"archive {archive} is corrupt: {exc}") from None
    except OSError as exc:
        raise describe_os_error(exc, archive, "reading archive") from None


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[Member]:
    members: list[Member] = []
    for info in zf.infolist():
        what = f"archive {archive}: member"
        rel = safe_relative(info.filename, what)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or kind == stat.S_IFDIR:
            continue
        if kind == stat.S_IFLNK:
            raise UnsafePath(f"{what} {info.filename!r} is a symlink; refused")
        if kind not in (0, stat.S_IFREG):
            raise UnsafePath(f"{what} {info.filename!r} is a device, FIFO or socket; refused")
        members.append((rel, info.file_size, functools.partial(zf.open, info)))
    return members


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[Member]:
    members: list[Member] = []
    for member in tf.getmembers():
        what = f"archive {archive}: member"
        rel = safe_relative(member.name, what)
        if member.isdir():
            continue
        if member.issym() or member.islnk():
            raise UnsafePath(f"{what} {member.name!r} is a link to {member.linkname!r}; refused")
        if not member.isreg():
            raise UnsafePath(f"{what} {member.name!r} is a device, FIFO or socket; refused")
        try:  # defence in depth: the standard library's own idea of a safe member
            if _DATA_FILTER is not None:
                _DATA_FILTER(member, "/nonexistent-revaer-extract-root")
        except tarfile.TarError as exc:  # FilterError is a TarError
            raise UnsafePath(f"{what} {member.name!r} refused: {exc}") from None
        members.append((rel, member.size, functools.partial(_open_tar_member, tf, member)))
    return members


def _open_tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tf.extractfile(member)
    if handle is None:  # isreg() was checked: tarfile returns None only for non-files
        raise FsOpsError(f"tar member {member.name!r} has no data")
    return handle
