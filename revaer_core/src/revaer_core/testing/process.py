"""The daemon and the ``revaer`` CLI as real subprocesses, and the event log the daemon leaves.

The daemon runs as the test harness's ``python -m revaer_core.testing run``:
``revaer run`` on the simulated engine, with ``--sim-*`` and ``--event-log``.

Reliability tests and the fault benchmarks kill, stop and restart the daemon
from outside, as an operator or a crash would; these helpers make every wait
bounded, and :class:`Daemons` kills at the end whatever it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from revaer_core.testing.waiting import wait_for

#: What ``revaer run`` prints on stderr once it serves.
BANNER = "revaer running:"
_API_URL = re.compile(r"API on (http://127\.0\.0\.1:\d+)")


def revaer_argv() -> list[str]:
    """The installed ``revaer`` script when it is beside this Python, else ``python -m revaer_core``."""
    script = shutil.which("revaer", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "revaer_core"]


def harness_argv() -> list[str]:
    """The test harness's command (``python -m revaer_core.testing``): ``revaer``'s options, a simulated daemon."""
    return [sys.executable, "-m", "revaer_core.testing"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Revaer's own variables (a test states each it wants)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def revaer(*args: str, config: Path | None = None, env: Mapping[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run one ``revaer`` command to completion (bounded by ``timeout``)."""
    argv = [*revaer_argv(), *(["--config", str(config)] if config is not None else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=child_env(env), timeout=timeout, check=False)


def write_config(path: Path, tables: Mapping[str, Mapping[str, Any]]) -> Path:
    """A settings file from ``{"runtime": {...}, "runtime.postgres": {...}}`` (values: str, int, float, bool)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return json.dumps(str(v))  # a TOML basic string is a JSON string for what we write

    text = "".join(
        f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items()) + "\n"
        for name, table in tables.items()
    )
    path.write_text(text, encoding="utf-8")
    return path


class DaemonProcess:
    """One simulated daemon subprocess (the harness's ``run``); stdout and stderr go to files so nothing blocks."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        config: Path,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        product: bool = False,
    ):
        """:param product: run the product's ``revaer run`` (libtorrent) instead of the harness's simulated daemon."""
        self.stderr_path = workdir / f"daemon-{time.monotonic_ns()}.err"
        self.stdout_path = self.stderr_path.with_suffix(".out")
        argv = [*(revaer_argv() if product else harness_argv()), "--config", str(config), "run", *args]
        with self.stderr_path.open("wb") as err, self.stdout_path.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env(env), cwd=workdir)
        self.pid = self.process.pid

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        """Everything the process printed so far, stdout then stderr."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace") + self.stderr

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_running(self, timeout: float = 60) -> None:
        """Until the banner shows; fails at once, quoting stderr, when the daemon exits instead."""

        def running() -> bool:
            if BANNER in self.stderr:
                return True
            if not self.alive:
                raise AssertionError(f"revaer run exited {self.process.returncode}:\n{self.stderr}")
            return False

        wait_for(running, "revaer run to start", timeout=timeout)

    @property
    def api_url(self) -> str:
        match = _API_URL.search(self.stderr)
        assert match, f"no API URL in the banner:\n{self.stderr}"
        return match.group(1)

    def health(self) -> dict[str, Any]:
        """``GET /health`` of this daemon's API."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=30) as response:  # noqa: S310 - loopback
                body = response.read()
        except urllib.error.HTTPError as error:  # 503 while degraded or failed: the body still says why
            body = error.read()
        answer: dict[str, Any] = json.loads(body)
        return answer

    def wait_exit(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would, and reap it."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (a clean stop) and its exit status; SIGKILL when it does not stop in time."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"revaer run did not stop within {timeout} s of SIGTERM:\n{self.stderr}") from None


@attrs.define
class Daemons:
    """Starts daemons for a test and kills every one still running at teardown."""

    workdir: Path
    started: list[DaemonProcess] = attrs.field(factory=list)

    def __call__(
        self, *args: str, config: Path, env: Mapping[str, str] | None = None, product: bool = False
    ) -> DaemonProcess:
        daemon = DaemonProcess(args, config=config, workdir=self.workdir, env=env, product=product)
        self.started.append(daemon)
        return daemon

    def kill_all(self) -> None:
        for daemon in self.started:
            daemon.kill()


# -- the event log (run --event-log) -----------------------------------------------------------------------------------


@attrs.frozen
class EventLogView:
    """The lines of an event log, split by kind; a torn last line (the process died mid-write) is dropped."""

    events: tuple[dict[str, Any], ...]
    written: tuple[dict[str, Any], ...]

    @classmethod
    def read(cls, path: Path) -> EventLogView:
        events: list[dict[str, Any]] = []
        written: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # only the last line can be torn, by a SIGKILL mid-write
            (events if record["k"] == "event" else written).append(record)
        return cls(events=tuple(events), written=tuple(written))

    def of_type(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == name]
