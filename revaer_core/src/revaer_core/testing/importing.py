"""The settings of a daemon that takes torrents over from a real client, for the import tests and benchmark.

The clients themselves are :mod:`revaer_core.testing.clients`; both run on a
PostgreSQL store, whose ``[runtime.postgres]`` table the caller gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from revaer_core.demo.seeder import loopback_settings
from revaer_core.settings import ApiSettings, RuntimeSettings, Settings
from revaer_core.testing.process import write_config


def settings_for(root: Path, pg_options: Mapping[str, Any], downloads: Path, api_port: int) -> Settings:
    """A daemon on the PostgreSQL store ``pg_options`` name, with a loopback engine saving into ``downloads``."""
    return Settings(
        runtime=RuntimeSettings(
            backend="postgres",
            data_dir=root / "data",
            flush_interval_ms=50,
            backend_options={"postgres": dict(pg_options)},
        ),
        engine=loopback_settings(downloads),
        api=ApiSettings(host="127.0.0.1", port=api_port),
    )


def config_for(path: Path, settings: Settings) -> Path:
    """The settings file the CLI reads: the same store, download dir and API port as ``settings``."""
    return write_config(
        path,
        {
            "runtime": {"backend": "postgres", "data_dir": str(settings.runtime.data_dir)},
            "runtime.postgres": dict(settings.runtime.options_for("postgres")),
            "engine": {"download_dir": str(settings.engine.download_dir)},
            "api": {"host": "127.0.0.1", "port": settings.api.port},
        },
    )
