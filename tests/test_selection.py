"""Choosing a backend by name: installed, absent, broken, or switched off."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from revaer_core.errors import PluginError
from revaer_core.plugins import installed_plugins, load_plugin, open_store
from revaer_core.settings import load_settings
from tests.support.dists import fake_distribution

BROKEN = {"revaer_broken_store": "import this_module_does_not_exist\n"}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path where tests install fake distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return root


def revaer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "revaer_core", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_the_memory_backend_is_selected_by_environment(tmp_path: Path) -> None:
    store = open_store(
        load_settings(env={"REVAER_RUNTIME_BACKEND": "memory", "REVAER_DATA_DIR": str(tmp_path)}).runtime
    )
    assert (store.backend, store.persistent) == ("memory", True)
    assert type(store.plugin).__name__ == "MemoryStore"


def test_the_master_switch_gives_the_no_store_runtime(tmp_path: Path) -> None:
    env = {"REVAER_RUNTIME_BACKEND": "memory", "REVAER_RUNTIME_PERSISTENCE": "off", "REVAER_DATA_DIR": str(tmp_path)}
    store = open_store(load_settings(env=env).runtime)
    assert (store.backend, store.persistent, store.plugin) == (None, False, None)


def test_an_unknown_backend_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as caught:
        open_store(load_settings(env={"REVAER_RUNTIME_BACKEND": "nosuch", "REVAER_DATA_DIR": str(tmp_path)}).runtime)
    message = str(caught.value)
    assert "'nosuch' is not installed" in message and "memory" in message and "\n" not in message


def test_a_broken_other_plugin_does_not_stop_startup(site: Path, tmp_path: Path) -> None:
    fake_distribution(site, "revaer-broken", "9.9", {"broken": "revaer_broken_store:Store"}, BROKEN)
    store = open_store(
        load_settings(env={"REVAER_RUNTIME_BACKEND": "memory", "REVAER_DATA_DIR": str(tmp_path)}).runtime
    )
    assert store.backend == "memory"
    assert "revaer_broken_store" not in sys.modules, "an unselected plugin was imported"


def test_a_broken_selected_plugin_is_named_with_its_distribution(site: Path) -> None:
    fake_distribution(site, "revaer-broken", "9.9", {"broken": "revaer_broken_store:Store"}, BROKEN)
    with pytest.raises(PluginError) as caught:
        load_plugin("broken")
    message = str(caught.value)
    assert "'broken' from revaer-broken 9.9 failed to load" in message
    assert "this_module_does_not_exist" in message


def test_a_third_party_plugin_is_found_by_its_entry_point_name(site: Path) -> None:
    source = """
        from revaer_core import hookimpl

        class Store:
            def __init__(self):
                self.rows = {}

            @hookimpl
            def upsert_torrents(self, statuses):
                self.rows.update((s.id, s) for s in statuses)

            @hookimpl
            def load_torrents(self):
                return list(self.rows.values())
    """
    fake_distribution(
        site, "revaer-runtime-dict", "1.2.3", {"dict": "revaer_dict_store:Store"}, {"revaer_dict_store": source}
    )
    plugin, info = load_plugin("dict")
    assert type(plugin).__name__ == "Store"
    assert (info.distribution, info.version, info.hooks) == (
        "revaer-runtime-dict",
        "1.2.3",
        ("upsert_torrents", "load_torrents"),  # in spec order: writes are specified before reads
    )
    listed = {p.name: p for p in installed_plugins()}
    assert listed["dict"].error is None and "memory" in listed


def test_plugins_command_lists_broken_and_working_plugins(tmp_path: Path) -> None:
    site = fake_distribution(tmp_path / "site", "revaer-broken", "9.9", {"broken": "revaer_broken_store:Store"}, BROKEN)
    result = revaer("plugins", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["memory"]["distribution"] == "revaer-runtime-memory"
    assert "record_job_transition" in listed["memory"]["hooks"] and listed["memory"]["error"] is None
    assert "this_module_does_not_exist" in listed["broken"]["error"]
    table = revaer("plugins", env={"PYTHONPATH": str(site)})
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == [
        "NAME",
        "DISTRIBUTION",
        "VERSION",
        "HOOKS",
    ]


def test_runtime_status_reports_the_selection(tmp_path: Path) -> None:
    base = {"REVAER_DATA_DIR": str(tmp_path), "REVAER_CONFIG": ""}
    memory = revaer("runtime", "status", "--json", env={**base, "REVAER_RUNTIME_BACKEND": "memory"})
    assert memory.returncode == 0, memory.stderr
    report = json.loads(memory.stdout)
    assert (report["backend"], report["persistence"], report["health"]["ok"]) == ("memory", True, True)
    off = revaer(
        "runtime", "status", env={**base, "REVAER_RUNTIME_BACKEND": "memory", "REVAER_RUNTIME_PERSISTENCE": "off"}
    )
    assert off.returncode == 0 and "off (REVAER_RUNTIME_PERSISTENCE" in off.stdout


@pytest.mark.parametrize(
    ("env", "code", "words"),
    [
        ({"REVAER_RUNTIME_BACKEND": "nosuch"}, 3, "runtime backend 'nosuch' is not installed"),
        ({"REVAER_RUNTIME_PERSISTENCE": "maybe"}, 2, "REVAER_RUNTIME_PERSISTENCE: expected true or false"),
    ],
)
def test_errors_are_one_line_and_an_exit_code(tmp_path: Path, env: dict[str, str], code: int, words: str) -> None:
    result = revaer("runtime", "status", env={"REVAER_DATA_DIR": str(tmp_path), **env})
    assert result.returncode == code
    assert result.stderr.strip().count("\n") == 0 and words in result.stderr
    assert "Traceback" not in result.stderr
    debug = revaer("--debug", "runtime", "status", env={"REVAER_DATA_DIR": str(tmp_path), **env})
    assert "Traceback" in debug.stderr
