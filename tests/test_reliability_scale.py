"""``revaer run`` at scale, stopped with SIGTERM: 10,000 simulated torrents, and busy real libtorrent torrents.

Subprocess daemons on PostgreSQL, as an operator runs them. The events reach
steady state, SIGTERM stops the daemon cleanly (exit 0, "stopped cleanly",
so within ``shutdown_deadline_s``), and the store holds every torrent and
every torrent's last progress. How long the events and the flushes ever
paused is a timing, so the tests print it and assert nothing on it:
``nox -s bench -- --only faults`` reports the gaps against their targets
(an event gap under 1 s, the store at most two flush intervals behind),
with 2,000 real libtorrent torrents too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scale_scenario import ScaleRun, real, simulated

from revaer_runtime_pg.testing import PrivateCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_KIB = 1024


def _stopped_cleanly_with_everything_stored(run: ScaleRun) -> None:
    assert run.exit_code == 0, run.stderr[-3000:]
    assert run.stopped_in is not None, "the stop was not clean (past its deadline, or something left unwritten)"
    assert run.missing == 0, "the store misses some torrents"
    assert run.lost == 0, "the store misses the last progress of some torrents"


def test_ten_thousand_torrents_flow_and_stop_cleanly_within_the_deadline(tmp_path: Path) -> None:
    with PrivateCluster() as cluster:
        run = simulated(cluster, tmp_path)
    print(f"\n{run.summary()}")
    assert run.events > 10_000, "the event flow did not reach steady state"
    _stopped_cleanly_with_everything_stored(run)


def test_busy_libtorrent_torrents_reach_the_store_and_stop_cleanly(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    """40 real torrents: 20 restored and seeding to a loopback swarm, 20 added through the API and downloading from it.

    The scenario waits until every torrent has its peer and every download
    has had data (it fails otherwise); at 16 KiB/s each download of 256 KiB
    outlasts the run, so the stop comes mid-download and the store must hold
    the progress of that moment.
    """
    run = real(pg_url, pg_schema, tmp_path, 40, payload=256 * _KIB, seed_payload=256 * _KIB, pace=16 * _KIB,
               settle_s=2.0, measure_s=3.0, busy_timeout_s=40.0)  # fmt: skip
    print(f"\n{run.summary()}")
    assert run.events > 0, "no event at steady state"
    _stopped_cleanly_with_everything_stored(run)
