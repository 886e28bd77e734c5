"""Settings: file, environment, and one clear error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core.errors import ConfigError
from revaer_core.settings import Durability, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "revaer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_select_no_store(tmp_path: Path) -> None:
    settings = load_settings(env={"REVAER_CONFIG": str(write(tmp_path, ""))})
    assert settings.runtime.backend == "none"
    assert settings.runtime.selected_backend is None
    assert settings.runtime.flush_interval_ms == 250
    assert settings.runtime.durability is Durability.BATCHED


def test_file_values_and_backend_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[runtime]
backend = "postgres"
flush_interval_ms = 100
durability = "sync"
data_dir = "~/revaer-data"

[runtime.postgres]
dsn = "postgresql://u:secret@db/revaer"
pool_size = 4
""",
    )
    runtime = load_settings(path, env={}).runtime
    assert runtime.selected_backend == "postgres"
    assert (runtime.flush_interval_ms, runtime.durability) == (100, Durability.SYNC)
    assert runtime.data_dir == Path("~/revaer-data").expanduser()
    assert runtime.options_for("postgres") == {"dsn": "postgresql://u:secret@db/revaer", "pool_size": 4}
    assert runtime.options_for("memory") == {}


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[runtime]\nbackend = "postgres"\n')
    runtime = load_settings(path, env={"REVAER_RUNTIME_BACKEND": "memory", "REVAER_DATA_DIR": str(tmp_path)}).runtime
    assert runtime.selected_backend == "memory"
    assert runtime.data_dir == tmp_path


@pytest.mark.parametrize("value", ["off", "OFF", "false", "0", "no"])
def test_the_master_switch_wins_over_everything(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, '[runtime]\nbackend = "memory"\npersistence = true\n')
    env = {"REVAER_RUNTIME_BACKEND": "postgres", "REVAER_RUNTIME_PERSISTENCE": value}
    assert load_settings(path, env=env).runtime.selected_backend is None


@pytest.mark.parametrize(
    ("text", "env", "key", "words"),
    [
        ('[runtime]\nbacknd = "memory"\n', {}, "runtime.backnd", "did you mean 'backend'"),
        ('[runtime]\nflush_interval_ms = "fast"\n', {}, "runtime.flush_interval_ms", "expected an integer"),
        ('[runtime]\ndurability = "eventually"\n', {}, "runtime.durability", "'batched', 'sync'"),
        ("[runtime]\npersistence = 1\n", {}, "runtime.persistence", "true or false"),
        ("[runtim]\n", {}, "runtim", "unknown section"),
        ("runtime = 3\n", {}, "runtime", "expected a table"),
        ('[runtime]\nbackend = ""\n', {}, "runtime.backend", "must not be empty"),
        ("", {"REVAER_RUNTIME_PERSISTENCE": "maybe"}, "REVAER_RUNTIME_PERSISTENCE", "true or false"),
        ("[runtime\n", {}, "revaer.toml", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, env: dict[str, str], key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    assert key in caught.value.key
    assert words in str(caught.value)


def test_a_named_settings_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="settings file not found"):
        load_settings(env={"REVAER_CONFIG": str(tmp_path / "missing.toml")})
