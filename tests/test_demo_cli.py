"""``revaer demo`` without running it: what it needs, the store it picks, the file and the commands it writes.

The full runs, and every printed command pasted into a shell, are in test_e2e_demo.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import attrs
import pytest

from revaer_core import demo
from revaer_core.demo import Shell, demo_backend, demo_settings, open_demo_store, revaer_argv, toml_value
from revaer_core.errors import RevaerError, StoreUnavailable
from revaer_core.jobs import FsJob, JobStatus
from revaer_core.settings import RuntimeSettings, Settings, load_settings
from revaer_core.status import Rates, TorrentState, TorrentStatus

WITHOUT_LIBTORRENT = """
import sys
sys.modules["libtorrent"] = None  # what an install without the extra looks like to an import
from revaer_core.cli import main
sys.exit(main(["demo", "--dir", sys.argv[1]]))
"""


def test_without_libtorrent_the_demo_names_the_extra_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LIBTORRENT, str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("revaer: error: ") and "pip install 'revaer-core[libtorrent]'" in result.stderr
    assert not root.exists(), "the demo touched its directory before finding out it cannot run"


def test_revaer_is_printed_as_a_shell_would_find_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "venv" / "bin" / "revaer"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script.parent / "python"))
    monkeypatch.delenv("NOX_CURRENT_SESSION", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert revaer_argv() == [str(script)], "not on PATH: the absolute path"
    monkeypatch.setenv("PATH", f"{tmp_path / 'elsewhere'}{os.pathsep}{script.parent}")
    assert revaer_argv() == ["revaer"], "PATH finds this very script"
    monkeypatch.setenv("NOX_CURRENT_SESSION", "demo")
    assert revaer_argv() == [str(script)], "nox -s demo: the session's PATH is not the shell's"
    monkeypatch.delenv("NOX_CURRENT_SESSION")
    other = tmp_path / "other" / "revaer"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n", encoding="utf-8")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", f"{other.parent}{os.pathsep}{script.parent}")
    assert revaer_argv() == [str(script)], "PATH finds another revaer first"
    script.unlink()
    assert revaer_argv() == [str(script.parent / "python"), "-m", "revaer_core"], "no script: this Python"


def test_printed_commands_are_quoted_for_a_shell(tmp_path: Path) -> None:
    config = tmp_path / "it's a demo" / "revaer.toml"
    shell = Shell(revaer=("/opt/my tools/revaer",), config=config, unset=("REVAER_DATA_DIR",))
    printed = shell.command("torrents", "add", str(tmp_path / "Revaer Demo (2026).torrent"))
    assert shlex.split(printed) == [
        "env",
        "-u",
        "REVAER_DATA_DIR",
        "/opt/my tools/revaer",
        "--config",
        str(config),
        "torrents",
        "add",
        str(tmp_path / "Revaer Demo (2026).torrent"),
    ]
    assert shlex.split(Shell(revaer=("revaer",), config=config).command("run"))[0] == "revaer"


def test_the_selected_backend_and_its_table_are_kept_but_postgres_gets_its_own_server() -> None:
    options = {"pickle": {"file": "x.pickle"}, "postgres": {"dsn": "postgresql://ops:secret@db/prod"}}
    assert demo_backend(RuntimeSettings(backend="pickle", backend_options=options)) == (
        "pickle",
        {"file": "x.pickle"},
        None,
    )
    name, table, note = demo_backend(RuntimeSettings(backend="postgres", backend_options=options))
    assert (name, table) == ("postgres", {}) and note is not None and "[runtime.postgres] is ignored" in note
    assert demo_backend(RuntimeSettings()) == ("postgres", {}, None), "nothing selected: the embedded default"


def test_the_settings_file_keeps_the_backend_table_as_written(tmp_path: Path) -> None:
    table = {
        "dsn": 'sq"lite://me:pa\\ss@host/db',
        "note": "tab\there, DEL \x7f, é, 🐍",
        "sizes": [1, 2.5, float("inf")],
        "nested": {"on": True, "a key": "x"},
        "since": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    }
    text = demo_settings(tmp_path, "my.store", table, tmp_path / "data", persistence=False, header="demo")
    path = tmp_path / "revaer.toml"
    path.write_text(text, encoding="utf-8")
    assert tomllib.loads(text)["runtime"]["my.store"] == table
    runtime = load_settings(path, env={}).runtime
    assert (runtime.backend, runtime.persistence, runtime.data_dir) == ("my.store", False, tmp_path / "data")
    assert runtime.options_for("my.store") == table
    with pytest.raises(TypeError):
        toml_value(object())


def test_an_embedded_server_that_cannot_start_is_one_line_with_a_way_round(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise StoreUnavailable("no PostgreSQL server binaries for embedded mode")

    monkeypatch.setattr(demo, "open_store", refuse)
    with pytest.raises(RevaerError) as caught:
        open_demo_store(Settings(runtime=RuntimeSettings(backend="postgres")), "revaer")
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 3
    assert "no PostgreSQL server binaries" in message and "REVAER_RUNTIME_BACKEND=memory revaer demo" in message
    with pytest.raises(StoreUnavailable):  # another backend's failure is its own
        open_demo_store(Settings(runtime=RuntimeSettings(backend="pickle")), "revaer")


def test_a_restart_that_lost_something_names_what() -> None:
    now = dt.datetime.now(dt.UTC)
    before = TorrentStatus(id=uuid.uuid4(), added_at=now, last_updated=now, state=TorrentState.COMPLETED)
    job = FsJob(torrent_id=before.id, status=JobStatus.MOVED, source="/d", attempt=1, created_at=now, updated_at=now)
    seeding = attrs.evolve(before, rates=Rates(upload_bps=1024), last_updated=now + dt.timedelta(seconds=1))
    assert demo._lost(before, seeding, job) is None, "rates and the last update move while a torrent seeds"
    moved = attrs.evolve(before, library_path="/library/x", download_dir="/downloads")
    assert demo._lost(before, moved, job) == "the torrent's library_path, download_dir changed"
    assert demo._lost(before, attrs.evolve(before, state=TorrentState.SEEDING), job) == "the torrent's state changed"
    assert demo._lost(before, None, job) == "the torrent is not in the catalog"
    assert demo._lost(before, before, None) == "the FsOps job is missing"
