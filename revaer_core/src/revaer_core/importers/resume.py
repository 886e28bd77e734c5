"""libtorrent's side of an import: reading a client's progress and writing it as Revaer's resume data.

Both clients' progress ends as one form, libtorrent resume data with the info
dictionary inside (as the engine saves its own), so the engine reads it with
``lt.read_resume_data`` whichever client it came from and checks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import libtorrent as lt

from revaer_core.errors import InvalidInput


@attrs.frozen
class Progress:
    """Which pieces a client had verified, and their bytes."""

    had: int
    total: int
    bytes_had: int


def torrent_info(metainfo: bytes) -> lt.torrent_info:
    """libtorrent's view of a .torrent; one it cannot read is bad input."""
    try:
        return lt.torrent_info(metainfo)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InvalidInput(f"libtorrent cannot read the .torrent: {exc}") from None


def read_resume(data: bytes) -> lt.add_torrent_params:
    """A libtorrent (qBittorrent) fastresume; one libtorrent cannot read is bad input."""
    try:
        return lt.read_resume_data(data)
    except RuntimeError as exc:
        raise InvalidInput(f"not libtorrent resume data: {exc}") from None


def new_params(info: lt.torrent_info, have: Sequence[bool]) -> lt.add_torrent_params:
    """Resume parameters for ``info`` with the pieces ``have`` says were verified."""
    params = lt.add_torrent_params()
    params.ti = info
    params.have_pieces = list(have)
    return params


def progress_of(params: lt.add_torrent_params) -> Progress:
    """The verified pieces of ``params`` (its ``ti`` set), counted."""
    info = params.ti
    if info is None:
        raise InvalidInput("no metainfo to count the pieces of")
    have = [bool(p) for p in params.have_pieces]
    total = info.num_pieces()
    had = [i for i, ok in enumerate(have[:total]) if ok]
    return Progress(had=len(had), total=total, bytes_had=sum(info.piece_size(i) for i in had))


def resume_bytes(params: lt.add_torrent_params, save_path: str) -> bytes:
    """The resume data Revaer stores: ``params`` with its save path, the info dictionary included."""
    params.save_path = save_path
    return bytes(lt.write_resume_data_buf(params))
