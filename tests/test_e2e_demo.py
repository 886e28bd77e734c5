"""``revaer demo``, the README's first command, as a newcomer runs it: a real process, exit 0.

The demo ends with commands to try; each test pastes them into a shell as printed and
expects each to work: the reads against the store the demo left, and the daemon's
commands against ``revaer run`` started as printed.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from revaer_core.settings import DEFAULT_API_PORT
from revaer_core.testing.waiting import wait_for
from tests.support.dists import fake_distribution

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # the demo runs the embedded server

PASSWORD = "hunter2-demo"
NAME = "Revaer Demo (2026)"

#: A third-party backend that keeps its data: the memory store, pickled to a file after every write.
PICKLE_STORE = """
    import os
    import pickle
    import threading
    from pathlib import Path

    from revaer_core import Capability, StoreHealth, hookimpl
    from revaer_runtime_memory import MemoryStore

    STATE = ("_torrents", "_resume", "_sources", "_jobs", "_history")


    class Store(MemoryStore):
        @hookimpl
        def store_configure(self, options, data_dir):
            self._file = Path(data_dir) / options.get("file", "store.pickle")
            self._dsn = options.get("dsn", "")
            self._saving = threading.Lock()
            if self._file.exists():
                for name, value in zip(STATE, pickle.loads(self._file.read_bytes())):
                    setattr(self, name, value)

        def _save(self):
            with self._saving:
                with self._lock:
                    data = pickle.dumps(tuple(getattr(self, name) for name in STATE))
                self._file.with_suffix(".tmp").write_bytes(data)
                os.replace(self._file.with_suffix(".tmp"), self._file)

        @hookimpl
        def store_capabilities(self):
            return {Capability.DURABLE, Capability.RESUME_DATA, Capability.SOURCES}

        @hookimpl
        def store_health(self):
            return StoreHealth(ok=True, detail="a pickle file", facts={"file": str(self._file), "dsn": self._dsn})

        @hookimpl
        def upsert_torrents(self, statuses):
            super().upsert_torrents(statuses)
            self._save()

        @hookimpl
        def remove_torrents(self, torrent_ids):
            super().remove_torrents(torrent_ids)
            self._save()

        @hookimpl
        def save_resume_data(self, torrent_id, data):
            super().save_resume_data(torrent_id, data)
            self._save()

        @hookimpl
        def save_torrent_sources(self, sources):
            super().save_torrent_sources(sources)
            self._save()

        @hookimpl
        def record_job_transition(self, transition):
            job = super().record_job_transition(transition)
            self._save()
            return job
"""


def newcomer_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without Revaer's variables (the embedded default), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}, **(extra or {})}


def arguments(command: str) -> list[str]:
    """The words of ``command`` after ``--config FILE``: what it asks of revaer."""
    words = shlex.split(command)
    return words[words.index("--config") + 2 :]


@attrs.frozen
class Demo:
    """A finished ``revaer demo`` run and the commands it suggested, as printed."""

    result: subprocess.CompletedProcess[str]
    root: Path

    @property
    def commands(self) -> list[str]:
        return [line.removeprefix("  $ ") for line in self.result.stderr.splitlines() if line.startswith("  $ ")]

    def _split(self) -> int:
        return next(i for i, c in enumerate(self.commands) if arguments(c) == ["run"])

    @property
    def reads(self) -> list[str]:
        """What to run while the daemon is down: everything before ``run``."""
        return self.commands[: self._split()]

    @property
    def run(self) -> str:
        return self.commands[self._split()]

    @property
    def daemon_commands(self) -> list[str]:
        """What to run against the daemon ``run`` starts: everything after it."""
        return self.commands[self._split() + 1 :]

    @property
    def settings(self) -> dict[str, Any]:
        return tomllib.loads((self.root / "revaer.toml").read_text(encoding="utf-8"))


def run_demo(root: Path, env: Mapping[str, str], *options: str) -> Demo:
    result = subprocess.run(
        [sys.executable, "-m", "revaer_core", *options, "demo", "--dir", str(root)],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=root.parent,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return Demo(result=result, root=root)


def as_printed(command: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` pasted into a shell started somewhere else."""
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=dict(env), cwd=cwd, timeout=60, check=False
    )


def run_the_reads(demo: Demo, env: Mapping[str, str], cwd: Path) -> list[str]:
    """Run every suggested read; each exits 0. Returns their outputs."""
    outputs = []
    for command in demo.reads:
        done = as_printed(command, env, cwd)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        outputs.append(done.stdout)
    return outputs


def drive_the_daemon(demo: Demo, env: Mapping[str, str], cwd: Path) -> list[str]:
    """Start ``run`` as printed, run every suggested daemon command against it (each exits 0), stop it cleanly."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", DEFAULT_API_PORT))
        except OSError:
            pytest.skip(f"port {DEFAULT_API_PORT}, where the demo's daemon listens, is taken")
    log = cwd / "run.err"
    with log.open("wb") as err:
        daemon = subprocess.Popen(
            ["sh", "-c", f"exec {demo.run}"], stdout=subprocess.DEVNULL, stderr=err, env=dict(env)
        )
    try:

        def running() -> bool:
            if daemon.poll() is not None:
                raise AssertionError(f"{demo.run} exited {daemon.returncode}:\n{log.read_text()}")
            return "revaer running:" in log.read_text()

        wait_for(running, "revaer run to start", timeout=60)
        outputs = []
        for command in demo.daemon_commands:
            done = as_printed(command, env, cwd)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            outputs.append(done.stdout)
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
    return outputs


def test_the_demo_survives_its_restart_and_its_commands_work(shared_dir: Path) -> None:
    """The embedded default, with an operator's database and data dir in the environment: both are left alone."""
    elsewhere = shared_dir / "operators-data"
    env = newcomer_env(
        {"REVAER_DATABASE_URL": f"postgresql://ops:{PASSWORD}@db.example/prod", "REVAER_DATA_DIR": str(elsewhere)}
    )
    root = shared_dir / "demo"
    demo = run_demo(root, env)
    stderr = demo.result.stderr
    assert "The state survived the restart." in stderr
    assert "the engine restored 1 torrent(s) from the stored resume data" in stderr
    assert "store: postgres (embedded PostgreSQL, data in " in stderr
    assert "REVAER_DATABASE_URL is ignored" in stderr and "REVAER_DATA_DIR is ignored" in stderr
    assert PASSWORD not in stderr + demo.result.stdout
    library = root / "library" / NAME
    assert (library / "Revaer.Demo.2026.mkv").stat().st_size == 6 * 1024 * 1024
    assert not (library / "Sample").exists(), "the skip_extras preset let the sample through"
    assert not elsewhere.exists()

    settings = (root / "revaer.toml").read_text(encoding="utf-8")
    assert demo.settings["runtime"]["backend"] == "postgres"
    assert PASSWORD not in settings and "postgres]" not in settings
    assert stat.S_IMODE((root / "revaer.toml").stat().st_mode) == 0o600

    torrent_id = demo.result.stdout.split()[0]
    assert [arguments(c) for c in demo.reads] == [
        ["torrents", "list"],
        ["torrents", "show", torrent_id[:8]],
        ["fsops", "show", torrent_id],
    ]
    assert all(c.startswith("env -u REVAER_DATABASE_URL -u REVAER_DATA_DIR ") for c in demo.commands)
    listed, shown, job = run_the_reads(demo, env, shared_dir)
    assert NAME in listed and "completed" in listed
    assert NAME in shown
    assert "moved" in job
    added, paused, resumed = drive_the_daemon(demo, env, shared_dir)
    assert added.startswith("already there") and paused.startswith("paused") and resumed.startswith("resumed")


def test_the_memory_store_selected_by_environment_is_the_one_named_and_written(shared_dir: Path) -> None:
    env = newcomer_env({"REVAER_RUNTIME_BACKEND": "memory"})
    root = shared_dir / "demo"
    demo = run_demo(root, env)
    stderr = demo.result.stderr
    assert "store: memory (in memory" in stderr and "PostgreSQL" not in stderr
    assert "the memory store held it in this process only, so it is gone now" in stderr
    assert demo.settings["runtime"]["backend"] == "memory"
    assert demo.reads == [], "nothing is left to read once the process is gone"
    without = newcomer_env()  # the file alone selects the store now
    added, paused, resumed = drive_the_daemon(demo, without, shared_dir)
    assert added.startswith("added") and paused.startswith("paused") and resumed.startswith("resumed")


def test_a_third_party_store_selected_by_settings_is_the_one_named_and_written(shared_dir: Path) -> None:
    site = fake_distribution(
        shared_dir / "site", "revaer-runtime-pickle", "0.1", {"pickle": "revaer_pickle_store:Store"},
        {"revaer_pickle_store": PICKLE_STORE},
    )  # fmt: skip
    table = {"file": "demo.pickle", "dsn": f"pickle://demo:{PASSWORD}@localhost/demo"}
    user = shared_dir / "user.toml"
    user.write_text(
        '[runtime]\nbackend = "pickle"\n\n[runtime.pickle]\n' + "".join(f'{k} = "{v}"\n' for k, v in table.items()),
        encoding="utf-8",
    )
    env = newcomer_env({"PYTHONPATH": str(site)})
    root = shared_dir / "demo"
    demo = run_demo(root, env, "--config", str(user))
    stderr = demo.result.stderr
    pickled = root / "data" / "demo.pickle"
    assert f"store: pickle (a pickle file; file {pickled}; dsn pickle://demo:***@localhost/demo)" in stderr
    assert "The state survived the restart." in stderr
    assert PASSWORD not in stderr + demo.result.stdout, "a password the backend reports is printed masked"
    runtime = demo.settings["runtime"]
    assert runtime["backend"] == "pickle" and runtime["pickle"] == table
    assert stat.S_IMODE((root / "revaer.toml").stat().st_mode) == 0o600, "the copied table holds a password"
    listed, shown, job = run_the_reads(demo, env, shared_dir)
    assert NAME in listed and NAME in shown and "moved" in job
