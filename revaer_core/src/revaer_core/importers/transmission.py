"""Transmission's config folder: ``torrents/<name>.torrent`` beside ``resume/<name>.resume``.

A ``.resume`` is bencoded: ``destination`` (the save path), ``paused``,
``dnd`` and ``priority`` per file, ``labels``, ``speed-limit-down``/``-up``
and ``progress``, whose ``have``, ``pieces`` or ``blocks`` say "all", "none"
or give a bitfield (most significant bit first). The verified pieces become
libtorrent's ``have_pieces`` in resume data, so the engine checks nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from revaer_core.control.metainfo import BencodeError, bdecode
from revaer_core.errors import InvalidInput
from revaer_core.importers.intake import planned, rate, read_torrent
from revaer_core.importers.plan import Client, FolderRefused, ImportPlan, Planned, Skipped
from revaer_core.importers.resume import new_params, torrent_info
from revaer_core.settings import EngineSettings

#: Transmission's largest block; a block is this or the piece size halved until it fits.
MAX_BLOCK = 16 * 1024
#: Transmission's -1 (low), 0 (normal), 1 (high) as libtorrent priorities.
PRIORITIES = {-1: 1, 0: 4, 1: 7}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def read_folder(folder: Path, engine: EngineSettings) -> ImportPlan:
    """Every torrent of a Transmission config folder, planned; nothing is changed.

    :raises FolderRefused: the folder is missing or has no ``resume/`` and ``torrents/`` folders.
    """
    if not folder.is_dir():
        raise FolderRefused(
            f"{folder} is not a folder; give Transmission's config folder, the one holding resume/ and torrents/ "
            "(e.g. ~/.config/transmission-daemon or ~/.config/transmission)"
        )
    resume_dir, torrent_dir = folder / "resume", folder / "torrents"
    if not resume_dir.is_dir() or not torrent_dir.is_dir():
        raise FolderRefused(
            f"{folder} has no resume/ and torrents/ folders, so it is not Transmission's config folder "
            "(e.g. ~/.config/transmission-daemon)"
        )
    try:
        resumes = sorted(p.name for p in resume_dir.iterdir() if p.name.endswith(".resume"))
        torrent_files = sorted(p.name for p in torrent_dir.iterdir() if p.name.endswith(".torrent"))
    except OSError as exc:
        raise FolderRefused(f"cannot list {folder}: {(exc.strerror or str(exc)).lower()}") from None
    stems = {n.removesuffix(".resume") for n in resumes}
    skipped = [
        Skipped(torrent_dir / n, "no .resume beside it in resume/, so its progress and choices are unknown")
        for n in torrent_files
        if n.removesuffix(".torrent") not in stems
    ]
    entries = (_one(resume_dir / n, torrent_dir / (n.removesuffix(".resume") + ".torrent"), engine) for n in resumes)
    return ImportPlan.of(Client.TRANSMISSION, folder, entries, skipped)


def _one(path: Path, torrent_path: Path, engine: EngineSettings) -> Planned | Skipped:
    try:
        resume = bdecode(path.read_bytes())
        if not isinstance(resume, dict):
            raise BencodeError("not a dictionary")
        metainfo = read_torrent(torrent_path)
        info = torrent_info(metainfo)
        have = pieces_had(resume.get(b"progress"), info.num_pieces(), info.piece_length(), info.total_size())
    except OSError as exc:
        return Skipped(path, f"cannot read it: {(exc.strerror or str(exc)).lower()}")
    except BencodeError as exc:
        return Skipped(path, f"corrupt: not bencoded data ({exc})")
    except InvalidInput as exc:
        return Skipped(path, str(exc))
    count = info.num_files()
    dnd = _ints(resume.get(b"dnd"))
    levels = _ints(resume.get(b"priority"))
    priorities = [
        0 if i < len(dnd) and dnd[i] else PRIORITIES.get(levels[i] if i < len(levels) else 0, 4) for i in range(count)
    ]
    lost: list[str] = []
    return planned(
        path,
        metainfo,
        new_params(info, have),
        save_path=_text(resume.get(b"destination")),
        paused=bool(resume.get(b"paused")),
        sequential=False,
        priorities=priorities,
        labels=[_text(label) for label in resume.get(b"labels") or [] if isinstance(label, bytes)],
        download_limit=_limit(resume.get(b"speed-limit-down")),
        upload_limit=_limit(resume.get(b"speed-limit-up")),
        lost=_lost(resume, lost),
        engine=engine,
    )


def _ints(value: Any) -> list[int]:
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


def _limit(value: Any) -> int | None:
    """A ``speed-limit-*`` table as bytes/s, when its limit is on (``speed-Bps``, else ``speed`` in KB/s)."""
    if not isinstance(value, dict) or not value.get(b"use-speed-limit"):
        return None
    speed = value.get(b"speed-Bps")
    if not isinstance(speed, int):
        kilo = value.get(b"speed")
        speed = kilo * 1000 if isinstance(kilo, int) else 0
    return rate(speed)


def _bits(field: bytes, count: int) -> list[bool]:
    return [bool(field[i >> 3] & (0x80 >> (i & 7))) if (i >> 3) < len(field) else False for i in range(count)]


def pieces_had(progress: Any, pieces: int, piece_length: int, total_size: int) -> list[bool]:
    """Which pieces the ``progress`` table says were verified.

    ``have: "all"`` or a ``pieces``/``blocks``/``bitfield`` of ``"all"`` means
    every piece; a ``pieces`` (or older ``bitfield``) bitfield names pieces; a
    ``blocks`` bitfield names blocks, and a piece counts when all its blocks do.
    """
    if not isinstance(progress, dict):
        raise InvalidInput("corrupt: it has no progress table")
    marks = [progress.get(k) for k in (b"have", b"pieces", b"blocks", b"bitfield")]
    if b"all" in marks:
        return [True] * pieces
    for key in (b"pieces", b"bitfield"):
        field = progress.get(key)
        if isinstance(field, bytes) and field != b"none":
            return _bits(field, pieces)
    blocks = progress.get(b"blocks")
    if isinstance(blocks, bytes) and blocks != b"none":
        block = piece_length
        while block > MAX_BLOCK:
            block //= 2
        per_piece = piece_length // block
        had = _bits(blocks, (total_size + block - 1) // block)
        return [all(had[p * per_piece : (p + 1) * per_piece]) for p in range(pieces)]
    return [False] * pieces


def _lost(resume: dict[bytes, Any], lost: list[str]) -> list[str]:
    """What Transmission kept for this torrent that Revaer has no place for."""
    if resume.get(b"ratio-limit", {}).get(b"ratio-mode", 0) if isinstance(resume.get(b"ratio-limit"), dict) else 0:
        lost.append("seed ratio limit")
    if resume.get(b"idle-limit", {}).get(b"idle-mode", 0) if isinstance(resume.get(b"idle-limit"), dict) else 0:
        lost.append("idle seeding limit")
    if resume.get(b"bandwidth-priority", 0):
        lost.append("bandwidth priority")
    if incomplete := _text(resume.get(b"incomplete-dir")):
        lost.append(f"incomplete folder {incomplete} (Revaer downloads in the destination)")
    for key, what in ((b"downloaded", "downloaded"), (b"uploaded", "uploaded")):
        if isinstance(resume.get(key), int) and resume[key] > 0:
            lost.append(f"{what} total ({resume[key]} bytes): Revaer counts from 0")
    return lost
