"""One client record made into a :class:`Planned`, with the checks both clients share.

A record that cannot be imported becomes a :class:`Skipped` naming its file and
why; a choice Revaer cannot keep (an invalid label, a ratio limit) becomes a
line of ``lost`` and the torrent is still imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import libtorrent as lt

from revaer_core.control.metainfo import BencodeError, read_metainfo
from revaer_core.control.requests import MAX_LABELS, MAX_RATE, add_request, labels_of
from revaer_core.errors import InvalidInput
from revaer_core.importers.plan import Planned, Skipped
from revaer_core.importers.resume import progress_of, resume_bytes
from revaer_core.settings import EngineSettings


def read_torrent(path: Path) -> bytes:
    """A .torrent's bytes; a missing or unreadable one is bad input naming the problem."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"its .torrent {path.name} is missing") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {(exc.strerror or str(exc)).lower()}") from None


def kept_labels(raw: Iterable[str], lost: list[str]) -> tuple[str, ...]:
    """The labels Revaer takes; one it refuses is dropped, and said so in ``lost``."""
    kept: set[str] = set()
    for label in raw:
        try:
            kept.update(labels_of([label]))
        except InvalidInput as exc:
            lost.append(f"label dropped: {exc}")
    ordered = sorted(kept)
    if len(ordered) > MAX_LABELS:
        lost.append(f"labels dropped (a torrent takes at most {MAX_LABELS}): {', '.join(ordered[MAX_LABELS:])}")
    return tuple(ordered[:MAX_LABELS])


def rate(value: int) -> int | None:
    """A client's rate in bytes/s as a Revaer limit: 0 or less is none."""
    return min(value, MAX_RATE) if value > 0 else None


def planned(
    file: Path,
    metainfo: bytes,
    params: lt.add_torrent_params,
    *,
    save_path: str,
    paused: bool,
    sequential: bool,
    priorities: Sequence[int],
    labels: Iterable[str],
    download_limit: int | None,
    upload_limit: int | None,
    lost: list[str],
    engine: EngineSettings,
) -> Planned | Skipped:
    """The torrent of ``file`` as an add, checked as every add is; a :class:`Skipped` when it cannot be one."""
    try:
        info = read_metainfo(metainfo)
    except (BencodeError, InvalidInput) as exc:
        return Skipped(file, f"its .torrent is corrupt: {exc}")
    if not save_path or "\x00" in save_path or not Path(save_path).is_absolute():
        return Skipped(file, f"its save path {save_path[:200]!r} is not an absolute path")
    if not Path(save_path).is_dir():
        return Skipped(file, f"its save path {save_path} no longer exists; put the data back there and import again")
    kept = kept_labels(labels, lost)
    count = len(info.files or ())
    chosen = {i: p for i, p in enumerate(priorities[:count]) if 0 <= p <= 7 and p != 4}
    padding = {f.index for f in info.files or () if f.pad}
    params.file_priorities = [
        priorities[i] if i < len(priorities) and 0 <= priorities[i] <= 7 else 4 for i in range(count)
    ]
    try:
        request = add_request(
            info,
            engine,
            save_path=save_path,
            paused=paused,
            sequential=sequential,
            labels=kept,
            priorities={i: p for i, p in chosen.items() if i not in padding},
            download_limit=download_limit,
            upload_limit=upload_limit,
            resume_data=resume_bytes(params, save_path),
        )
    except InvalidInput as exc:
        return Skipped(file, str(exc))
    progress = progress_of(params)
    return Planned(
        file=file,
        request=request,
        pieces_had=progress.had,
        pieces_total=progress.total,
        bytes_had=progress.bytes_had,
        lost=tuple(lost),
    )
