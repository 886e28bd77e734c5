"""``kill -9`` in the middle of a real download: the engine resumes without a recheck from nearly all of it.

``revaer run`` (libtorrent, PostgreSQL) downloads 64 MiB from a loopback
seeder limited to 3 MiB/s (the pace of 200 MiB at 10 MiB/s) and is killed at
about half of it. The resume data
of torrents with newly verified pieces goes through the writer at each flush,
so the restarted engine comes back, without rechecking, at 95 % or more of
what a recheck finds on disk; its catalog starts from there and never moves
backwards (it shows what the engine resumed from, not the store's newer row).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from resume_kill_scenario import resume_after_kill

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_killed_download_resumes_from_its_verified_progress_without_a_recheck(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    run = resume_after_kill(tmp_path, pg_url, pg_schema)
    print(f"\n{run.summary()}")
    assert 0 < run.verified_at_kill < run.total, "the kill did not come mid-download"
    assert "resume data rejected" not in run.restart_log
    assert "(0 from their source" in run.restart_log, "the torrent was restored from its source, with a recheck"
    assert run.resumed <= run.verified_at_kill, "resumed from pieces that are not on disk"
    assert run.ratio >= 0.95
    backwards = [(a, b) for a, b in itertools.pairwise(run.shown) if b < a]
    assert not backwards, f"the catalog moved backwards after the restart: {backwards[:3]}"
    assert run.completed, "the restarted daemon did not finish the download"
