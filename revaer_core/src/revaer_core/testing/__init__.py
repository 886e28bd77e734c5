"""Revaer's test harness: what the test suite and the benchmarks drive the runtime with.

None of it runs in the product; the product's modules never import it. It
ships in the wheel beside :mod:`revaer_core.contract` and is meant to be
installed with the ``testing`` extra (``pip install 'revaer-core[testing]'``):

- :mod:`revaer_core.testing.simulated`: a scripted, deterministic engine
  that publishes the events of a real one, without a network or a disk;
- :mod:`revaer_core.testing.eventlog`: a JSON-lines log of every event and
  every committed store write, which crash tests check the store against;
- :mod:`revaer_core.testing.jobs`: one-line FsOps job transitions
  (``job_started(store, ...)``) for tests that set up a job's history;
- :mod:`revaer_core.testing.clients`: qbittorrent-nox and transmission-daemon
  driven on 127.0.0.1, and the torrents they are given (the import tests and
  the start/stop bench).

The demo's second BitTorrent session is not here: ``revaer demo`` is part of
the product, so its seeder is :mod:`revaer_core.demo.seeder`.
"""
