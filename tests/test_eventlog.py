"""The harness's event log: what crash and scale checks read back of each committed flush."""

from __future__ import annotations

from pathlib import Path

import attrs

from revaer_core import Progress, TorrentState
from revaer_core.contract import samples
from revaer_core.testing.eventlog import EventLog
from revaer_core.testing.process import EventLogView


def test_each_flush_is_one_line_naming_every_row_by_id_state_and_progress(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    one = attrs.evolve(samples.status(1), state=TorrentState.DOWNLOADING, progress=Progress(downloaded=5, total=9))
    two = attrs.evolve(samples.status(2), state=TorrentState.SEEDING, progress=Progress(downloaded=9, total=9))
    log.on_written([one, two], [samples.status(3).id])
    later = attrs.evolve(one, progress=Progress(downloaded=7, total=9))
    log.on_written([later], [])
    log.close()
    first, second = EventLogView.read(tmp_path / "events.jsonl").written
    assert first["upserted"] == [[str(one.id), "downloading", 5], [str(two.id), "seeding", 9]]
    assert first["removed"] == [str(samples.status(3).id)]
    assert second["upserted"] == [[str(one.id), "downloading", 7]] and second["removed"] == []
    assert first["t"] <= second["t"]
