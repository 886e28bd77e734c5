"""Every number has a range, every address list parses as libtorrent takes it, every folder is checked at start.

Each bad value is one ConfigError whose key is the setting and whose message
says what would be accepted; the pre-start checks (folders, overlaps) name
every setting involved.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from revaer_core.errors import ConfigError
from revaer_core.preflight import check_startup
from revaer_core.settings import (
    EngineSettings,
    FsOpsSettings,
    RuntimeSettings,
    Settings,
    load_settings,
    parse_listen_interfaces,
)
from revaer_runtime_pg.options import parse_options


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "revaer.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(env={"REVAER_CONFIG": str(path), "XDG_DATA_HOME": str(tmp_path / "xdg")})


@pytest.mark.parametrize(
    ("table", "key", "value", "accepted"),
    [
        ("runtime", "flush_interval_ms", "0", "between 10 and 60000 ms"),
        ("runtime", "flush_interval_ms", "-250", "between 10 and 60000 ms"),
        ("runtime", "flush_interval_ms", "10000000000000", "between 10 and 60000 ms"),
        ("runtime", "shutdown_deadline_s", "-5", "between 0.5 and 3600 s"),
        ("runtime", "shutdown_deadline_s", "1e300", "between 0.5 and 3600 s"),
        ("runtime", "shutdown_deadline_s", "nan", "between 0.5 and 3600 s"),
        ("runtime", "shutdown_deadline_s", "inf", "between 0.5 and 3600 s"),
        ("engine", "resume_save_interval_s", "1e300", "between 0.1 and 86400 s"),
        ("engine", "alert_poll_ms", "0", "between 1 and 10000 ms"),
        ("engine", "status_interval_ms", "99999999999", "between 10 and 60000 ms"),
        ("engine", "connections_limit", "1", "between 2 and 1000000"),
        ("engine.watch", "poll_interval_s", "nan", "between 0.05 and 3600 s"),
        ("api", "port", "99999", "between 0 and 65535"),
        ("api", "port", "-1", "between 0 and 65535"),
        ("api", "max_upload_bytes", "0", "between 1 and 1073741824 bytes"),
        ("api", "max_upload_bytes", "10000000000000", "between 1 and 1073741824 bytes"),
        ("api", "max_event_streams", "0", "between 1 and 100000"),
        ("fsops", "workers", "100000", "between 1 and 64"),
    ],
)
def test_a_number_out_of_range_names_its_key_and_the_range(
    tmp_path: Path, table: str, key: str, value: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[{table}]\n{key} = {value}\n")
    assert caught.value.key == f"{table}.{key}"
    assert f"must be {accepted}, got " in str(caught.value)


def test_the_edges_of_each_range_are_accepted(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        "[runtime]\nflush_interval_ms = 10\nshutdown_deadline_s = 3600\n"
        "[api]\nport = 0\nmax_event_streams = 100000\n[fsops]\nworkers = 64\n",
    )
    assert (settings.runtime.flush_interval_ms, settings.runtime.shutdown_deadline_s) == (10, 3600.0)
    assert (settings.api.port, settings.api.max_event_streams, settings.fsops.workers) == (0, 100000, 64)


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:0", "0.0.0.0:6881,[::]:6881", "[::1]:6881s", "eth0:6881", "seed.example.org:51413", " 10.0.0.1:1l "],
)
def test_listen_interfaces_take_what_libtorrent_takes(text: str) -> None:
    assert parse_listen_interfaces("engine.listen_interfaces", text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("999.1.1.1:99999", "'999.1.1.1' in '999.1.1.1:99999' is not an IPv4 address"),
        ("127.0.0.1:99999", "port '99999' in '127.0.0.1:99999' must be between 0 and 65535"),
        ("127.0.0.1", "'127.0.0.1' has no port"),
        ("::1:6881", "write an IPv6 address in brackets"),
        ("[::g]:1", "'::g' in '[::g]:1' is not an IPv6 address"),
        ("[::1]6881", "is not [IPv6]:port"),
        ("127.0.0.1:1,,", "has an empty item"),
        ("bad host:1", "is not an address, host name or device name"),
        ("  ", "must not be empty"),
    ],
)
def test_a_bad_listen_interface_is_one_error_naming_the_item(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f'[engine]\nlisten_interfaces = "{text}"\n')
    assert caught.value.key == "engine.listen_interfaces"
    assert problem in str(caught.value)


def test_a_blank_database_url_is_an_error_naming_the_variable() -> None:
    for blank in ("", "   "):
        with pytest.raises(ConfigError) as caught:
            parse_options({}, env={"REVAER_DATABASE_URL": blank})
        assert caught.value.key == "REVAER_DATABASE_URL"
        assert "set but blank" in str(caught.value)
    with pytest.raises(ConfigError, match=r"^runtime\.postgres\.dsn: must not be empty"):
        parse_options({"dsn": " "}, env={})


# -- pre-start checks ----------------------------------------------------------------------------------


def _settings(tmp_path: Path, *, downloads: Path | None = None, library: Path | None = None,
              data: Path | None = None, **engine: object) -> Settings:  # fmt: skip
    return Settings(
        runtime=RuntimeSettings(data_dir=data or tmp_path / "data"),
        engine=EngineSettings(download_dir=downloads or tmp_path / "downloads", **engine),  # type: ignore[arg-type]
        fsops=FsOpsSettings(enabled=True, library_root=library or tmp_path / "library"),
    )


def test_separate_folders_and_the_default_layout_pass(tmp_path: Path) -> None:
    check_startup(_settings(tmp_path), serve_api=False)
    data = tmp_path / "data"  # the default: downloads in the data dir's own downloads folder
    check_startup(_settings(tmp_path, data=data, downloads=data / "downloads" / "tv"), serve_api=False)
    check_startup(_settings(tmp_path, data=data, allowed_save_roots=(data / "downloads",)), serve_api=False)
    with pytest.raises(ConfigError, match=rf"give each a folder of its own \(downloads may go in {data}/downloads\)"):
        check_startup(_settings(tmp_path, data=data, downloads=data / "incoming"), serve_api=False)


@pytest.mark.parametrize("key", ["runtime.data_dir", "engine.download_dir", "fsops.library_root", "engine.watch_dir"])
def test_a_folder_under_a_regular_file_is_refused_naming_its_key(tmp_path: Path, key: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    target = blocker / "sub"
    folders = {"runtime.data_dir": "data", "engine.download_dir": "downloads", "fsops.library_root": "library"}
    settings = _settings(tmp_path, **({folders[key]: target} if key in folders else {}))
    if key == "engine.watch_dir":
        settings = attrs.evolve(settings, engine=attrs.evolve(settings.engine, watch_dir=target))
    with pytest.raises(ConfigError) as caught:
        check_startup(settings, serve_api=False)
    assert caught.value.key == key
    assert f"{target} lies under {blocker}, which is a file, not a folder" in str(caught.value)
    with pytest.raises(ConfigError, match=r"is a file, not a folder"):
        check_startup(_settings(tmp_path, downloads=blocker), serve_api=False)


@pytest.mark.parametrize(
    ("layout", "keys"),
    [
        ({"downloads": "D", "library": "D/library"}, "engine.download_dir and fsops.library_root"),
        ({"downloads": "L/incoming", "library": "L"}, "engine.download_dir and fsops.library_root"),
        ({"downloads": "D", "library": "D"}, "engine.download_dir and fsops.library_root"),
        ({"downloads": "D", "data": "D/.state"}, "engine.download_dir and runtime.data_dir"),
        ({"downloads": "S/torrents", "data": "S"}, "engine.download_dir and runtime.data_dir"),
        ({"library": "S/media", "data": "S"}, "runtime.data_dir and fsops.library_root"),
        ({"library": "M", "data": "M/revaer"}, "runtime.data_dir and fsops.library_root"),
    ],
)
def test_overlapping_folders_are_refused_naming_both_settings(
    tmp_path: Path, layout: dict[str, str], keys: str
) -> None:
    settings = _settings(tmp_path, **{k: tmp_path / v for k, v in layout.items()})
    with pytest.raises(ConfigError) as caught:
        check_startup(settings, serve_api=False)
    assert caught.value.key == keys
    assert "overlap (one lies inside the other)" in str(caught.value)


@pytest.mark.parametrize("watch", ["downloads/watch", "."])
def test_a_watch_dir_a_torrent_could_write_into_is_refused(tmp_path: Path, watch: str) -> None:
    """A torrent that plants a ``.torrent`` file in the watch dir would have it added unasked."""
    settings = _settings(tmp_path)
    settings = attrs.evolve(settings, engine=attrs.evolve(settings.engine, watch_dir=tmp_path / watch))
    with pytest.raises(ConfigError) as caught:
        check_startup(settings, serve_api=False)
    assert caught.value.key == "engine.download_dir and engine.watch_dir"
    beside = attrs.evolve(settings, engine=attrs.evolve(settings.engine, watch_dir=tmp_path / "watch"))
    check_startup(beside, serve_api=False)


def test_a_save_root_around_the_library_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, allowed_save_roots=(tmp_path,))
    with pytest.raises(ConfigError) as caught:
        check_startup(settings, serve_api=False)
    assert caught.value.key == "engine.allowed_save_roots[0] and runtime.data_dir"


def test_a_symlink_does_not_hide_an_overlap(tmp_path: Path) -> None:
    (tmp_path / "downloads" / "library").mkdir(parents=True)
    (tmp_path / "media").symlink_to(tmp_path / "downloads" / "library", target_is_directory=True)
    settings = _settings(tmp_path, library=tmp_path / "media")
    with pytest.raises(ConfigError, match=r"^engine\.download_dir and fsops\.library_root: "):
        check_startup(settings, serve_api=False)


def test_an_fsops_owner_that_does_not_exist_is_refused_before_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings = attrs.evolve(settings, fsops=attrs.evolve(settings.fsops, owner="no-such-user-revaer"))
    with pytest.raises(ConfigError, match=r"^fsops\.owner: no such user"):
        check_startup(settings, serve_api=False)
