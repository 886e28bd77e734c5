"""The [api] settings table: host, port and token, checked key by key; the token never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core.errors import ConfigError
from revaer_core.settings import DEFAULT_API_PORT, load_settings


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "revaer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_listen_on_loopback_without_a_token(tmp_path: Path) -> None:
    api = load_settings(settings_file(tmp_path, ""), env={}).api
    assert (api.host, api.port, api.token) == ("127.0.0.1", DEFAULT_API_PORT, None)


def test_file_values_and_the_environment_token(tmp_path: Path) -> None:
    path = settings_file(tmp_path, '[api]\nhost = "10.1.2.3"\nport = 9000\ntoken = "from-file"\n')
    api = load_settings(path, env={}).api
    assert (api.host, api.port, api.token) == ("10.1.2.3", 9000, "from-file")
    assert load_settings(path, env={"REVAER_API_TOKEN": "from-env"}).api.token == "from-env"


def test_the_token_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    settings = load_settings(settings_file(tmp_path, '[api]\ntoken = "sekrit-token"\n'), env={})
    assert "sekrit-token" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[api]\nport = 70000\n", {}, "api.port"),
        ('[api]\nport = "http"\n', {}, "api.port"),
        ('[api]\nhost = ""\n', {}, "api.host"),
        ('[api]\ntoken = " "\n', {}, "api.token"),
        ("", {"REVAER_API_TOKEN": ""}, "REVAER_API_TOKEN"),
        ('[api]\ntokn = "x"\n', {}, "api.tokn"),
        ("api = 3\n", {}, "api"),
    ],
)
def test_a_bad_api_setting_names_its_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(settings_file(tmp_path, text), env=env)
    assert caught.value.key == key


def test_a_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'token'"):
        load_settings(settings_file(tmp_path, '[api]\ntokn = "x"\n'), env={})
