"""``revaer run`` with a bad setting: exit 2, one line naming the key, and nothing started.

"Nothing started" is checked where it would show: the PostgreSQL schema the
store would create does not exist afterwards, and no "stopped cleanly" (nor
any other log line) is printed. ``--debug`` adds a traceback and keeps the
exit code, for a settings error (2) and for a store failure (3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from revaer_core.testing.process import revaer, write_config

pytestmark = [pytest.mark.postgres]


def _schema_exists(pg_url: str, schema: str) -> bool:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def _config(tmp_path: Path, pg_url: str, pg_schema: str, **tables: dict[str, Any]) -> Path:
    base: dict[str, dict[str, Any]] = {
        "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data")},
        "runtime.postgres": {"dsn": pg_url, "schema": pg_schema},
        "engine": {"download_dir": str(tmp_path / "downloads")},
        "api": {"port": 0},
    }
    for name, table in tables.items():
        base[name.replace("__", ".")] = {**base.get(name.replace("__", "."), {}), **table}
    return write_config(tmp_path / "revaer.toml", base)


@pytest.mark.parametrize(
    ("tables", "starts_with"),
    [
        ({"runtime": {"flush_interval_ms": 0}}, "revaer: error: runtime.flush_interval_ms: must be between 10 and"),
        ({"runtime": {"shutdown_deadline_s": 1e300}}, "revaer: error: runtime.shutdown_deadline_s: must be between"),
        ({"engine": {"listen_interfaces": "999.1.1.1:99999"}}, "revaer: error: engine.listen_interfaces: '999.1.1.1'"),
        ({"fsops": {"enabled": True, "library_root": "{tmp}/downloads/library"}},
         "revaer: error: engine.download_dir and fsops.library_root: "),
        ({"engine": {"download_dir": "{tmp}/revaer.toml/downloads"}},
         "revaer: error: engine.download_dir: "),
        ({"fsops": {"enabled": True, "library_root": "{tmp}/library", "owner": "no-such-user-revaer"}},
         "revaer: error: fsops.owner: no such user"),
    ],
)  # fmt: skip
def test_a_bad_setting_stops_run_before_the_store_opens(
    tmp_path: Path, pg_url: str, pg_schema: str, tables: dict[str, dict[str, Any]], starts_with: str
) -> None:
    filled = {k: {n: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v for n, v in t.items()}
              for k, t in tables.items()}  # fmt: skip
    config = _config(tmp_path, pg_url, pg_schema, **filled)
    for debug in ((), ("--debug",)):
        done = revaer(*debug, "run", config=config, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith(starts_with), done.stderr
        if debug:
            assert "Traceback" in done.stderr
        else:
            assert len(lines) == 1, done.stderr
        assert "stopped cleanly" not in done.stderr and "revaer running" not in done.stderr
        assert not _schema_exists(pg_url, pg_schema)  # the store was never opened


def test_a_blank_database_url_is_refused_naming_it(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    config = _config(tmp_path, pg_url, pg_schema)
    done = revaer("run", config=config, env={"REVAER_DATABASE_URL": "  "}, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "revaer: error: REVAER_DATABASE_URL: is set but blank; unset it for the embedded server, "
        "or set a postgresql:// URL"
    ]
    assert "revaer running" not in done.stderr  # the plugin's options are read as its store opens: nothing after
    assert not _schema_exists(pg_url, pg_schema)


def test_debug_keeps_exit_3_for_a_store_that_cannot_be_reached(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(tmp_path / "data")},
            "runtime.postgres": {"dsn": "postgresql://revaer:s3cret-pw@127.0.0.1:1/revaer", "connect_timeout_s": 2},
        },
    )
    plain = revaer("torrents", "list", config=config)
    debug = revaer("--debug", "torrents", "list", config=config)
    assert plain.returncode == debug.returncode == 3, (plain.stderr, debug.stderr)
    assert len(plain.stderr.strip().splitlines()) == 1 and "Traceback" in debug.stderr
    assert "s3cret-pw" not in plain.stderr + debug.stderr
