"""Untrusted names and paths made safe, or refused.

Everything that names a file comes from a torrent or an archive inside one, so
it may try to climb out (``..``), jump elsewhere (``/etc``, ``C:\\``), hide a
NUL or collide with FsOps' own ``.revaer`` folder. These functions are the only
way FsOps turns such a name into a path.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from revaer_core.fsops.errors import UnsafePath

#: FsOps' own folder under the library root (metadata and work dirs).
META_DIR = ".revaer"

#: Archive suffixes FsOps extracts, longest first so ``.tar.gz`` wins over ``.gz``.
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def safe_component(name: str, what: str) -> str:
    """``name`` as one path component, or :class:`UnsafePath` saying why not.

    :param what: what the name is, for the message ("torrent name").
    """
    if "\x00" in name:
        raise UnsafePath(f"{what} {name!r} contains a NUL byte")
    if not name or name.strip() in ("", ".", ".."):
        raise UnsafePath(f"{what} {name!r} is not a usable file name")
    if "/" in name or "\\" in name:
        raise UnsafePath(f"{what} {name!r} contains a path separator")
    if name.casefold() == META_DIR:
        raise UnsafePath(f"{what} {name!r} is reserved for FsOps metadata")
    return name


def safe_relative(path: str, what: str) -> PurePosixPath:
    """``path`` (``/``- or ``\\``-separated) as a relative path that stays where it is put.

    Refuses absolute paths, drive letters, ``..`` and NUL; drops ``.`` and empty parts.
    """
    if "\x00" in path:
        raise UnsafePath(f"{what} {path!r} contains a NUL byte")
    unified = path.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise UnsafePath(f"{what} {path!r} is absolute")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"{what} {path!r} climbs out of its folder with '..'")
    if not parts:
        raise UnsafePath(f"{what} {path!r} names no file")
    return PurePosixPath(*parts)


def is_within(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def ensure_within(path: Path, root: Path, what: str) -> Path:
    """``path`` if it resolves under ``root``; else :class:`UnsafePath` naming both."""
    if not is_within(path, root):
        raise UnsafePath(f"{what} {path} resolves to {os.path.realpath(path)}, outside {root}")
    return path


def join_inside(root: Path, relative: PurePosixPath | str, what: str) -> Path:
    """``root / relative`` after checking that it stays under ``root``, symlinks included."""
    rel = relative if isinstance(relative, PurePosixPath) else safe_relative(relative, what)
    return ensure_within(root.joinpath(*rel.parts), root, what)


def archive_suffix(name: str) -> str | None:
    """The archive suffix FsOps extracts that ``name`` ends with, if any."""
    lowered = name.lower()
    return next((s for s in ARCHIVE_SUFFIXES if lowered.endswith(s) and len(lowered) > len(s)), None)


def archive_stem(name: str) -> str:
    """``name`` without its archive suffix (``show.tar.gz`` -> ``show``)."""
    suffix = archive_suffix(name)
    return name[: -len(suffix)] if suffix else name
