"""What an operator asks for, checked: the add's options and the changes to a torrent that is there.

The API and the watch folder build these from their input; every check is
here, so both refuse the same input with the same words.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs

from revaer_core.control.metainfo import MAX_FILES, TorrentInfo
from revaer_core.errors import InvalidInput, Refused
from revaer_core.settings import EngineSettings
from revaer_core.sources import DEFAULT_PRIORITY

MAX_LABELS = 32
MAX_LABEL_LENGTH = 64
MAX_PATH_LENGTH = 4096
#: 2^53: the largest integer every JSON reader keeps exactly; far above any real link's rate.
MAX_RATE = 2**53


def labels_of(values: Iterable[str]) -> tuple[str, ...]:
    """Labels checked: 1 to 64 printable characters each, at most 32, repeats dropped."""
    labels = []
    for raw in values:
        if not isinstance(raw, str):
            raise InvalidInput(f"a label must be text, got {raw!r}")
        label = raw.strip()
        if not label or len(label) > MAX_LABEL_LENGTH:
            raise InvalidInput(f"label {raw[:80]!r} must be 1 to {MAX_LABEL_LENGTH} characters")
        if any(unicodedata.category(c).startswith("C") for c in label):
            raise InvalidInput(f"label {label[:80]!r} holds a control character")
        labels.append(label)
    unique = tuple(sorted(set(labels)))
    if len(unique) > MAX_LABELS:
        raise InvalidInput(f"{len(unique)} labels given; the most a torrent takes is {MAX_LABELS}")
    return unique


def rate_of(name: str, value: int | None) -> int | None:
    """A rate limit in bytes/s; 0 and ``None`` mean no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number of bytes per second, got {value!r}")
    if value < 0:
        raise Refused(f"{name} must be >= 0 bytes per second (0 for no limit), got {value}")
    if value > MAX_RATE:
        raise Refused(f"{name} must be at most {MAX_RATE} bytes per second, got {value}")
    return value or None


def priority_of(index: int, priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 7:
        raise Refused(f"file {index}: priority must be 0 (skip) to 7, got {priority!r}")
    return priority


def save_path_of(text: str | os.PathLike[str] | None, roots: Sequence[Path], default: Path) -> Path:
    """The save path asked for, made absolute and checked to lie inside one of ``roots``.

    A relative path is taken inside the first root. ``..`` is refused outright,
    and symlinks are followed before the check, so no path leaves the roots.
    """
    if text is None or str(text).strip() == "":
        return default
    raw = str(text)
    if "\x00" in raw or len(raw) > MAX_PATH_LENGTH:
        raise InvalidInput(f"save path {raw[:80]!r} is not a usable path")
    path = Path(raw).expanduser()
    if ".." in path.parts:
        raise Refused(f"save path {raw!r} must not contain '..'; give the folder itself")
    if not path.is_absolute():
        path = roots[0] / path
    resolved = path.resolve()
    for root in roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return path
    allowed = ", ".join(str(r) for r in roots)
    raise Refused(f"save path {raw!r} is outside the allowed roots ({allowed}); see [engine] allowed_save_roots")


def file_priorities_of(
    files: Sequence[int] | None, skip: Iterable[int], priorities: Mapping[int, int]
) -> dict[int, int]:
    """Priorities by file index from ``--skip-file`` and ``--priority`` (a skip wins), indices checked.

    ``files`` are the indices of the torrent's files (alignment padding left out),
    ``None`` while they are unknown (a magnet): any index up to the most files a
    torrent may list is taken then.
    """
    known = set(files) if files is not None else None
    last = max(known, default=-1) if known is not None else MAX_FILES - 1
    chosen: dict[int, int] = {}
    for index, priority in [*priorities.items(), *((i, 0) for i in skip)]:
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInput(f"a file index must be a whole number, got {index!r}")
        if not 0 <= index <= last:
            have = f"its {len(known)} file(s) are numbered 0 to {last}" if known is not None else "indices start at 0"
            raise Refused(f"file index {index} is out of range: {have}")
        if known is not None and index not in known:
            raise Refused(f"file {index} is alignment padding, not a file; its priority cannot be set")
        chosen[index] = priority_of(index, priority)
    return chosen


def dense(priorities: Mapping[int, int], count: int | None = None) -> tuple[int, ...]:
    """Priorities by index as a tuple from index 0 (default priority where none was asked)."""
    length = count if count is not None else max(priorities, default=-1) + 1
    return tuple(priorities.get(i, DEFAULT_PRIORITY) for i in range(length))


@attrs.frozen
class AddRequest:
    """An add, checked: the torrent and what the user chose for it."""

    info: TorrentInfo
    save_path: Path
    paused: bool = False
    sequential: bool = False
    file_priorities: Mapping[int, int] = attrs.field(factory=dict)
    labels: tuple[str, ...] = ()
    download_limit: int | None = None
    upload_limit: int | None = None
    #: libtorrent resume data another client's progress became (``revaer import``): spares a recheck
    resume_data: bytes | None = attrs.field(default=None, repr=False)


def add_request(
    info: TorrentInfo,
    engine: EngineSettings,
    *,
    save_path: str | None = None,
    paused: bool = False,
    sequential: bool = False,
    labels: Iterable[str] = (),
    skip: Iterable[int] = (),
    priorities: Mapping[int, int] | None = None,
    download_limit: int | None = None,
    upload_limit: int | None = None,
    resume_data: bytes | None = None,
) -> AddRequest:
    """An add of ``info`` with these choices, every one checked against the ``[engine]`` settings."""
    files = None if info.files is None else [f.index for f in info.files if not f.pad]
    if resume_data is not None and info.metainfo is None:
        raise InvalidInput("resume data comes with the torrent's metainfo, not with a magnet link")
    return AddRequest(
        info=info,
        save_path=save_path_of(save_path, engine.save_roots, engine.download_dir),
        paused=paused,
        sequential=sequential,
        file_priorities=file_priorities_of(files, skip, priorities or {}),
        labels=labels_of(labels),
        download_limit=rate_of("download_limit", download_limit),
        upload_limit=rate_of("upload_limit", upload_limit),
        resume_data=resume_data,
    )


@attrs.frozen
class OptionsChange:
    """Changes to a torrent that is there; ``None`` leaves a choice as it is.

    A limit is set to no limit with 0 (or ``clear_*``), labels are replaced whole.
    """

    sequential: bool | None = None
    download_limit: int | None = None
    upload_limit: int | None = None
    clear_download_limit: bool = False
    clear_upload_limit: bool = False
    labels: tuple[str, ...] | None = None

    @property
    def empty(self) -> bool:
        return self == OptionsChange()

    def describe(self) -> dict[str, str]:
        """What the change asks for, as event text."""
        out: dict[str, str] = {}
        if self.sequential is not None:
            out["sequential"] = str(self.sequential).lower()
        if self.download_limit is not None or self.clear_download_limit:
            out["download_limit"] = str(self.download_limit or "none")
        if self.upload_limit is not None or self.clear_upload_limit:
            out["upload_limit"] = str(self.upload_limit or "none")
        if self.labels is not None:
            out["labels"] = ",".join(self.labels)
        return out
