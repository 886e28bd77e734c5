"""qBittorrent's ``BT_backup`` folder: ``<hash>.torrent`` beside ``<hash>.fastresume``.

A fastresume is libtorrent's own resume data plus ``qBt-*`` keys, so
libtorrent reads the progress, save path, pause, file priorities and limits
from it directly; the category and the tags become labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libtorrent as lt

from revaer_core.control.metainfo import BencodeError, bdecode
from revaer_core.errors import InvalidInput
from revaer_core.importers.intake import planned, rate, read_torrent
from revaer_core.importers.plan import Client, FolderRefused, ImportPlan, Planned, Skipped
from revaer_core.importers.resume import read_resume, torrent_info
from revaer_core.settings import EngineSettings

#: qBittorrent's file priorities as libtorrent's: its "normal" is libtorrent's 1, Revaer's (and libtorrent's) default 4.
PRIORITIES = {0: 0, 1: 4, 6: 6, 7: 7}
#: qBittorrent's "use the global setting" (-2) and "no limit" (-1) for its share limits; the ratio is kept x1000.
_NO_OWN_LIMIT = {-2, -2000, -1, -1000}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def read_folder(folder: Path, engine: EngineSettings) -> ImportPlan:
    """Every torrent of a ``BT_backup`` folder, planned; nothing is changed.

    :raises FolderRefused: the folder is missing or holds no ``.fastresume`` file.
    """
    if not folder.is_dir():
        raise FolderRefused(
            f"{folder} is not a folder; give qBittorrent's BT_backup folder (e.g. ~/.local/share/qBittorrent/BT_backup)"
        )
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise FolderRefused(f"cannot list {folder}: {(exc.strerror or str(exc)).lower()}") from None
    resumes = [n for n in names if n.endswith(".fastresume")]
    if not resumes:
        raise FolderRefused(
            f"{folder} holds no .fastresume files, so it is not qBittorrent's BT_backup folder "
            "(e.g. ~/.local/share/qBittorrent/BT_backup); stop qBittorrent first so it writes them"
        )
    stems = {n.removesuffix(".fastresume") for n in resumes}
    orphans = [
        Skipped(folder / name, "no .fastresume beside it, so its progress and choices are unknown")
        for name in names
        if name.endswith(".torrent") and name.removesuffix(".torrent") not in stems
    ]
    return ImportPlan.of(Client.QBITTORRENT, folder, (_one(folder / name, engine) for name in resumes), orphans)


def _one(path: Path, engine: EngineSettings) -> Planned | Skipped:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(path, f"cannot read it: {(exc.strerror or str(exc)).lower()}")
    try:
        keys = bdecode(data)
        if not isinstance(keys, dict):
            raise BencodeError("not a dictionary")
        params = read_resume(data)
        metainfo = read_torrent(path.with_suffix(".torrent"))
        params.ti = torrent_info(metainfo)
    except BencodeError as exc:
        return Skipped(path, f"corrupt: not bencoded data ({exc})")
    except InvalidInput as exc:
        return Skipped(path, str(exc))
    if params.ti.info_hashes() != params.info_hashes and params.info_hashes.has_v1():
        return Skipped(path, f"it is of another torrent than {path.with_suffix('.torrent').name}")
    flags = params.flags
    tags = keys.get(b"qBt-tags") or []
    category = _text(keys.get(b"qBt-category"))
    lost = _lost(keys, flags)
    return planned(
        path,
        metainfo,
        params,
        save_path=params.save_path or _text(keys.get(b"qBt-savePath")),
        # qBittorrent's own pause is paused and not auto-managed; paused and auto-managed is its queue's to start
        paused=bool(flags & lt.torrent_flags.paused) and not flags & lt.torrent_flags.auto_managed,
        sequential=bool(flags & lt.torrent_flags.sequential_download),
        priorities=[PRIORITIES.get(int(p), int(p)) for p in params.file_priorities],
        labels=[*([category] if category else []), *(_text(t) for t in tags if isinstance(t, bytes))],
        download_limit=rate(params.download_limit),
        upload_limit=rate(params.upload_limit),
        lost=lost,
        engine=engine,
    )


def _lost(keys: dict[bytes, Any], flags: int) -> list[str]:
    """What qBittorrent kept for this torrent that Revaer has no place for."""
    lost = []
    if keys.get(b"qBt-ratioLimit", -2) not in _NO_OWN_LIMIT:
        lost.append("share ratio limit")
    if keys.get(b"qBt-seedingTimeLimit", -2) not in _NO_OWN_LIMIT:
        lost.append("seeding time limit")
    if keys.get(b"qBt-inactiveSeedingTimeLimit", -2) not in _NO_OWN_LIMIT:
        lost.append("inactive seeding time limit")
    if name := _text(keys.get(b"qBt-name")):
        lost.append(f"custom name {name!r} (Revaer shows the torrent's own name)")
    if keys.get(b"qBt-firstLastPiecePriority"):
        lost.append("first and last pieces first")
    if download_path := _text(keys.get(b"qBt-downloadPath")):
        lost.append(f"incomplete-download folder {download_path} (Revaer downloads in the save path)")
    if flags & lt.torrent_flags.super_seeding:
        lost.append("super seeding")
    return lost
