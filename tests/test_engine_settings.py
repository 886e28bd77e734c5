"""The ``[engine]`` settings table: safe defaults, values from the file, errors naming ``engine.<key>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core.errors import ConfigError
from revaer_core.settings import load_settings


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "revaer.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(env={"REVAER_CONFIG": str(path), "XDG_DATA_HOME": str(tmp_path / "xdg")})


def test_defaults_are_loopback_only_with_discovery_and_port_mapping_off(tmp_path: Path) -> None:
    path = tmp_path / "revaer.toml"
    path.write_text("", encoding="utf-8")
    engine = load_settings(env={"REVAER_CONFIG": str(path)}).engine
    assert engine.listen_interfaces == "127.0.0.1:0"
    assert (engine.enable_dht, engine.enable_lsd, engine.enable_upnp, engine.enable_natpmp) == (False,) * 4
    assert engine.download_dir.name == "downloads"
    assert engine.resume_save_interval_s > 0


def test_values_come_from_the_engine_table(tmp_path: Path) -> None:
    path = tmp_path / "revaer.toml"
    path.write_text(
        """
[engine]
listen_interfaces = "0.0.0.0:6881"
enable_dht = true
download_dir = "/srv/torrents"
resume_save_interval_s = 30
alert_poll_ms = 50
connections_limit = 4000
""",
        encoding="utf-8",
    )
    engine = load_settings(env={"REVAER_CONFIG": str(path)}).engine
    assert engine.listen_interfaces == "0.0.0.0:6881"
    assert engine.enable_dht is True and engine.enable_lsd is False
    assert engine.download_dir == Path("/srv/torrents")
    assert engine.resume_save_interval_s == 30.0
    assert engine.alert_poll_ms == 50
    assert engine.connections_limit == 4000


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[engine]\nlisten_interface = "x"', "engine.listen_interface", "did you mean 'listen_interfaces'"),
        ('[engine]\nenable_dht = "maybe"', "engine.enable_dht", "true or false"),
        ("[engine]\nresume_save_interval_s = 0", "engine.resume_save_interval_s", "between 0.1 and 86400 s, got 0.0"),
        ("[engine]\nstatus_interval_ms = -5", "engine.status_interval_ms", "must be between 10 and 60000 ms, got -5"),
        ('[engine]\nlisten_interfaces = "  "', "engine.listen_interfaces", "must not be empty"),
        ('engine = "loopback"', "engine", "expected a table"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert caught.value.key == key
    assert problem in str(caught.value)
