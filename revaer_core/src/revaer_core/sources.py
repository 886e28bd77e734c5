"""A torrent's source: what brings it back when the engine has no resume data for it.

The store, not the engine, is the record of which torrents exist. An add is
acknowledged only once its source is stored, so a crash right after an add
loses nothing: at the next start the engine re-adds the torrent from its
resume data, or else from this source (and checks what is on disk).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

#: libtorrent's default file priority: what a file not named in ``file_priorities`` gets.
DEFAULT_PRIORITY = 4


class AddedVia(enum.StrEnum):
    """How a torrent came in; events and the stored source say it."""

    API = "api"
    CLI = "cli"
    WATCH = "watch"  #: the ``[engine] watch_dir`` folder
    IMPORT = "import"  #: ``revaer import`` from another client's state


def _priorities(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _aware(instance: object, attribute: attrs.Attribute[Any], value: datetime) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, got naive {value!r}")


@attrs.frozen
class StoredSource:
    """Exactly one of bencoded ``metainfo`` (a .torrent's bytes) or a ``magnet`` link, and how it was added.

    ``file_priorities`` are the priorities asked for at the add, by file index
    (files past the end get :data:`DEFAULT_PRIORITY`); they matter for a magnet,
    whose files are unknown until its metadata arrives. Afterwards the status's
    ``files`` say each file's current priority.
    """

    torrent_id: UUID
    added_at: datetime = attrs.field(validator=_aware)
    metainfo: bytes | None = None
    magnet: str | None = None
    file_priorities: tuple[int, ...] = attrs.field(default=(), converter=_priorities)
    added_via: AddedVia = AddedVia.API

    def __attrs_post_init__(self) -> None:
        if (self.metainfo is None) == (self.magnet is None):
            raise ValueError("a stored source holds exactly one of metainfo or magnet")
        for priority in self.file_priorities:
            if not 0 <= priority <= 7:
                raise ValueError(f"file priorities are 0..7, got {priority}")
