"""Storing planned torrents straight into the store, for when no daemon runs.

The rows are the ones the daemon's durable add stores (status, source, and
the resume data), so the next ``revaer run`` restores them as it restores any
torrent: from the resume data, without a recheck.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from revaer_core.control.controller import admission
from revaer_core.importers.plan import Outcome, Planned, Result
from revaer_core.sources import AddedVia
from revaer_core.status import Progress
from revaer_core.store import RuntimeStore


def into_store(store: RuntimeStore, torrents: Sequence[Planned]) -> list[Result]:
    """Store every torrent Revaer does not have yet; one it has (same info hash) is left as it is."""
    results: list[Result] = []
    new: list[Planned] = []
    seen: set[str] = set()
    known = {s.id for s in store.load_torrents()} if torrents else set()  # one read, not one a torrent
    for planned in torrents:
        if planned.info.torrent_id in known or planned.info.info_hash in seen:
            results.append(Result(planned.file, Outcome.ALREADY_THERE, planned))
        else:
            seen.add(planned.info.info_hash)
            new.append(planned)
    now = datetime.now(UTC)
    rows = []
    for planned in new:
        status, source = admission(planned.request, AddedVia.IMPORT, now)
        progress = Progress(downloaded=min(planned.bytes_had, status.progress.total), total=status.progress.total)
        rows.append((planned, attrs.evolve(status, progress=progress), source))
    flagged = store.upsert_torrents([status for _, status, _ in rows])  # stored sanitised, or not at all
    refused = {i for i in flagged if store.get_torrent(i) is None}
    kept = [(p, st, so) for p, st, so in rows if st.id not in refused]
    store.save_torrent_sources([source for _, _, source in kept])
    store.save_resume_data_batch(  # one round trip for them all, not a transaction a torrent
        [(status.id, p.request.resume_data) for p, status, _ in kept if p.request.resume_data is not None]
    )
    results.extend(Result(planned.file, Outcome.IMPORTED, planned) for planned, _, _ in kept)
    for planned, status, _ in rows:
        if status.id in refused:
            results.append(
                Result(planned.file, Outcome.SKIPPED, planned, "the store refused its status; see the log (--debug)")
            )
    return results
