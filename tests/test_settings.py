"""Settings: file, environment, and one clear error naming the key."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from revaer_core.errors import ConfigError, PluginError
from revaer_core.plugins import check_backend_tables, open_store
from revaer_core.settings import Durability, RuntimeSettings, build, load_settings


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


# -- [runtime.<name>] tables must name an installed backend ------------------------------------------------


def runtime_from(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> RuntimeSettings:
    return load_settings(write(tmp_path, text), env={"REVAER_DATA_DIR": str(tmp_path / "data"), **(env or {})}).runtime


def test_a_misspelled_backend_table_is_an_error_naming_it(tmp_path: Path) -> None:
    runtime = runtime_from(tmp_path, '[runtime]\nbackend = "postgres"\n\n[runtime.jsondr]\npath = "x"\n')
    with pytest.raises(ConfigError) as caught:
        check_backend_tables(runtime)
    message = str(caught.value)
    assert caught.value.key == "runtime.jsondr"
    assert "no installed runtime backend is named 'jsondr'" in message
    assert "installed: memory, postgres" in message and "selected: postgres" in message and "\n" not in message


def test_a_near_miss_says_which_table_was_meant(tmp_path: Path) -> None:
    runtime = runtime_from(tmp_path, '[runtime]\nbackend = "memory"\n\n[runtime.postgress]\ndsn = "x"\n')
    with pytest.raises(ConfigError, match=r"^runtime\.postgress: .*did you mean \[runtime\.postgres\]\?"):
        check_backend_tables(runtime)


def test_the_table_of_an_uninstalled_revaer_backend_only_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Uninstalling revaer-runtime-pg is a rollback: its leftover table must not stop the runtime."""
    runtime = runtime_from(tmp_path, '[runtime]\nbackend = "none"\n\n[runtime.postgres]\ndsn = "x"\n')
    check_backend_tables(runtime, installed={"memory"})
    assert "[runtime.postgres] configures a backend that is not installed (revaer-runtime-pg)" in caplog.text


def test_open_store_refuses_a_misspelled_table_before_anything_opens(tmp_path: Path) -> None:
    runtime = runtime_from(tmp_path, '[runtime]\nbackend = "memory"\n\n[runtime.memroy]\n')
    with pytest.raises(ConfigError, match=r"^runtime\.memroy: .*did you mean \[runtime\.memory\]\?"):
        open_store(runtime)
    assert not (tmp_path / "data").exists(), "the data dir was made for a store that cannot open"


def test_a_misspelled_table_is_refused_with_persistence_off_too(tmp_path: Path) -> None:
    runtime = runtime_from(
        tmp_path, '[runtime]\nbackend = "memory"\n\n[runtime.memroy]\n', env={"REVAER_RUNTIME_PERSISTENCE": "off"}
    )
    with pytest.raises(ConfigError, match=r"^runtime\.memroy: .*selected: none\)$"):
        open_store(runtime)


def test_a_table_for_an_installed_backend_that_is_not_selected_is_kept(tmp_path: Path) -> None:
    runtime = runtime_from(tmp_path, '[runtime]\nbackend = "memory"\n\n[runtime.postgres]\ndsn = "postgresql://x/y"\n')
    store = open_store(runtime)
    try:
        assert store.backend == "memory"
    finally:
        store.close()
    assert runtime.options_for("postgres") == {"dsn": "postgresql://x/y"}


def test_the_selected_backends_own_table_leaves_a_missing_plugin_to_the_install_hint(tmp_path: Path) -> None:
    runtime = runtime_from(tmp_path, '[runtime]\nbackend = "sqlite"\n\n[runtime.sqlite]\npath = "x"\n')
    check_backend_tables(runtime)
    with pytest.raises(PluginError, match="runtime backend 'sqlite' is not installed"):
        open_store(runtime)


def test_load_settings_does_not_look_plugins_up(tmp_path: Path) -> None:
    """The settings loader keeps backend tables unread: checking them is the plugin registry's job."""
    runtime = runtime_from(tmp_path, "[runtime.jsondr]\nretries = 3\n")
    assert runtime.options_for("jsondr") == {"retries": 3}


# -- paths: relative to the settings file; from a variable, relative to the current folder -------------------


def test_relative_paths_in_the_file_are_taken_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "revaer"
    folder.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        folder,
        f"""
[runtime]
data_dir = "state"

[engine]
download_dir = "downloads"
watch_dir = "../watch"
allowed_save_roots = ["{tmp_path}"]

[engine.watch]
save_path = "downloads/tv"

[fsops]
library_root = "{tmp_path / "library"}"
allowed_roots = ["{tmp_path}"]
""",
    )
    settings = load_settings(path, env={})
    assert settings.runtime.data_dir == folder / "state"
    assert settings.engine.download_dir == folder / "downloads"
    assert settings.engine.watch_dir == folder / ".." / "watch"
    assert settings.engine.watch.save_path == folder / "downloads" / "tv"
    assert settings.engine.allowed_save_roots == (tmp_path,)
    assert (settings.fsops.library_root, settings.fsops.allowed_roots) == (tmp_path / "library", (tmp_path,))


def test_a_relative_settings_file_name_anchors_at_the_folder_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", '[runtime]\ndata_dir = "state"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"REVAER_CONFIG": "conf/revaer.toml"})
    assert settings.runtime.data_dir == tmp_path / "conf" / "state"
    assert settings.runtime.data_dir.is_absolute()


def test_absolute_and_home_paths_in_the_file_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, '[runtime]\ndata_dir = "~/state"\n\n[engine]\ndownload_dir = "/srv/torrents"\n')
    settings = load_settings(path, env={})
    assert settings.runtime.data_dir == tmp_path / "home" / "state"
    assert settings.engine.download_dir == Path("/srv/torrents")


def test_a_relative_data_dir_variable_is_taken_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", '[runtime]\ndata_dir = "from-file"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(path, env={"REVAER_DATA_DIR": "from-env"}).runtime.data_dir == tmp_path / "from-env"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[engine]\nallowed_save_roots = ["rel"]\n', "engine.allowed_save_roots[0]"),
        ('[fsops]\nlibrary_root = "rel"\n', "fsops.library_root"),
        ('[fsops]\nallowed_roots = ["rel"]\n', "fsops.allowed_roots"),
    ],
)
def test_roots_that_bound_where_files_go_must_be_written_absolute(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env={})
    assert caught.value.key == key
    assert "must be an absolute path, got 'rel'" in str(caught.value)


def test_plugins_parsing_their_own_tables_keep_paths_as_written() -> None:
    """``build`` without a base (as a plugin calls it) resolves nothing: it cannot know the file's folder."""

    @attrs.frozen
    class Options:
        socket: Path | None = None

    assert build(Options, {"socket": "run/db.sock"}, "runtime.x").socket == Path("run/db.sock")


# -- the data dir's default -----------------------------------------------------------------------------


def test_the_data_dir_defaults_to_xdg_data_home(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert settings.runtime.data_dir == tmp_path / "xdg" / "revaer"
    assert settings.engine.download_dir == tmp_path / "xdg" / "revaer" / "downloads"


@pytest.mark.parametrize("xdg", [None, "", "relative/share"])
def test_without_a_usable_xdg_data_home_the_data_dir_is_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {} if xdg is None else {"XDG_DATA_HOME": xdg}
    assert load_settings(write(tmp_path, ""), env=env).runtime.data_dir == tmp_path / ".local" / "share" / "revaer"
