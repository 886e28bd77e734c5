"""Naming a torrent the way operators do: its UUID, a unique prefix of it, or of its info-hash."""

from __future__ import annotations

import re
from collections.abc import Iterable
from uuid import UUID

from revaer_core.errors import Conflict, InvalidInput, NotFound
from revaer_core.status import TorrentStatus

#: Shortest prefix taken: fewer characters would match too much to be meant.
MIN_PREFIX = 4
_REF = re.compile(r"[0-9a-f-]{1,64}")


def resolve(ref: str, statuses: Iterable[TorrentStatus]) -> TorrentStatus:
    """The one torrent ``ref`` names among ``statuses``.

    :raises InvalidInput: ``ref`` cannot name a torrent (too short, not hexadecimal).
    :raises NotFound: no torrent matches.
    :raises Conflict: several do; the message lists a few, to pick a longer prefix.
    """
    text = ref.strip().lower()
    try:
        exact = UUID(text)
    except ValueError:
        exact = None
    if exact is None and (not _REF.fullmatch(text) or len(text.replace("-", "")) < MIN_PREFIX):
        raise InvalidInput(
            f"{ref[:80]!r} is not a torrent id: give its UUID, or at least {MIN_PREFIX} leading hex digits "
            "of the UUID or of the info-hash (see 'revaer torrents list')"
        )
    bare = text.replace("-", "")
    found: dict[UUID, TorrentStatus] = {}
    for status in statuses:
        if exact is not None:
            if status.id == exact:
                return status
            continue
        if (
            status.id.hex.startswith(bare)
            or str(status.id).startswith(text)
            or (status.info_hash is not None and status.info_hash.startswith(bare))
        ):
            found[status.id] = status
    if not found:
        raise NotFound(f"no torrent matches {ref!r} (see 'revaer torrents list')")
    if len(found) > 1:
        some = ", ".join(str(i) for i in sorted(found)[:3])
        raise Conflict(f"{ref!r} matches {len(found)} torrents ({some}, ...); give more characters")
    return next(iter(found.values()))
