"""How far a job journal is trusted: only as far as the stored job and the configured folders vouch for it.

The journal says what to copy or move where. A forged one (planted by a
torrent whose files landed in the journal's folder, or edited by hand) could
make FsOps copy any file the daemon can read into the library, or move it
away. So before a journal entry resumes a job, its request must match what the
store holds for the torrent, its source must lie inside a folder torrents are
saved to, and every path its steps recorded must stay inside the source, the
work dir or the library root. A refused entry is moved aside and logged; it
never copies or moves anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from revaer_core.fsops.meta import JobMeta
from revaer_core.fsops.paths import is_within
from revaer_core.fsops.policy import FsOpsPolicy
from revaer_core.fsops.request import JobRequest


def check_request(
    meta: JobMeta, *, stored: JobRequest | None, store_answered: bool, source_roots: Sequence[Path]
) -> str | None:
    """Why the journal's request must not be run, or ``None`` when it may.

    :param stored: the request rebuilt from the store's torrent or job, if it holds one.
    :param store_answered: whether a persistent store was asked and answered (then
        "no stored job" means the journal names a torrent the daemon never had).
    :param source_roots: the folders torrents are saved to (``engine.download_dir``
        or ``engine.allowed_save_roots``); empty skips that check.
    """
    request = meta.request
    if request.torrent_id != meta.torrent_id:
        return f"its request names torrent {request.torrent_id}, not {meta.torrent_id}"
    if stored is None and store_answered:
        return f"the store holds no torrent or job {meta.torrent_id}"
    if stored is not None and (request.source != stored.source or request.name != stored.name):
        return f"its source {str(request.source)!r} is not the stored job's {str(stored.source)!r}"
    if source_roots and not any(is_within(request.source, root) for root in source_roots):
        roots = ", ".join(str(r) for r in source_roots)
        return f"its source {str(request.source)!r} lies outside the download folders ({roots})"
    return None


def check_state(meta: JobMeta, policy: FsOpsPolicy) -> str | None:
    """Why the paths the journal's steps recorded must not be used, or ``None`` when they may.

    Every origin lies in the torrent's source or its work dir; every target and
    the destination lie in the library root.
    """
    state, source = meta.state, meta.request.source
    work = policy.work_root / str(meta.torrent_id)
    library = policy.library_root
    destination = state.get("destination")
    if destination is not None and not (isinstance(destination, str) and is_within(Path(destination), library)):
        return f"its destination {destination!r} lies outside the library root {library}"
    try:
        origins = [(str(entry[1]), str(entry[2])) for entry in state.get("plan", [])]
        origins += [(str(entry[0]), str(entry[2])) for entry in state.get("targets", [])]
        targets = [str(entry[1]) for entry in state.get("targets", [])]
    except (TypeError, IndexError, KeyError):
        return "its plan or targets are malformed"
    for origin, kind in origins:
        root = work if kind == "work" else source
        if kind not in ("work", "source") or not is_within(Path(origin), root):
            return f"it would take {origin!r} from outside {root}"
    for target in targets:
        if not is_within(Path(target), library):
            return f"it would write {target!r} outside the library root {library}"
    return None
