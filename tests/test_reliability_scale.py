"""``revaer run`` with 10,000 simulated torrents downloading at once, stopped with SIGTERM.

A subprocess daemon on a private PostgreSQL cluster, as an operator runs it.
At steady state the events never stop for a second (a step publishes its
events as it goes, and resume data is saved spread over its interval instead
of for every torrent at once); SIGTERM stops it cleanly (exit 0, "stopped
cleanly", so within ``shutdown_deadline_s``), and the store holds every
torrent's last progress. ``nox -s bench -- --only faults`` prints the
timings, with 2,000 real libtorrent torrents too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_runtime_pg.testing import PrivateCluster
from tests.support.scale import simulated

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_ten_thousand_torrents_flow_without_a_stall_and_stop_cleanly_on_time(tmp_path: Path) -> None:
    with PrivateCluster() as cluster:
        run = simulated(cluster, tmp_path)
    print(f"\n{run.summary()}")
    assert run.events > 10_000, "the event flow did not reach steady state"
    assert run.event_gap < 1.0, f"the events stopped for {run.event_gap:.2f} s"
    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.stopped_in is not None, "the stop was not clean (past its deadline, or something left unwritten)"
    assert run.lost == 0, "the store misses the last progress of some torrents"
