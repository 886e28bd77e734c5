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
- :mod:`revaer_core.testing.cli`: ``python -m revaer_core.testing run``, the
  daemon on the simulated engine with ``--sim-*`` and ``--event-log``;
- :mod:`revaer_core.testing.process`: that daemon and the ``revaer`` CLI as
  subprocesses with bounded waits, and the event log they leave;
- :mod:`revaer_core.testing.importing`: a daemon's settings for taking
  torrents over from those clients;
- :mod:`revaer_core.testing.waiting`: :func:`wait_for`, a condition with a
  deadline and a message.

PostgreSQL servers of a test's own are the store's business:
:mod:`revaer_runtime_pg.testing`. Nothing here imports ``tests/``.

The demo's second BitTorrent session is not here: ``revaer demo`` is part of
the product, so its seeder is :mod:`revaer_core.demo.seeder`.
"""
