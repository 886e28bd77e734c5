"""A backend's ``revaer runtime`` commands get their options from the ``runtime_commands`` hook, not from the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from revaer_core import ConfigError
from revaer_core.cli import main
from revaer_runtime_pg import PostgresStore


@pytest.fixture
def bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "revaer.toml"
    path.write_text('[runtime]\nbackend = "postgres"\n\n[runtime.postgres]\npool_size = "five"\n', "utf-8")
    monkeypatch.setenv("REVAER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REVAER_RUNTIME_BACKEND", raising=False)
    monkeypatch.delenv("REVAER_DATABASE_URL", raising=False)
    return path


def test_help_lists_the_commands_even_with_bad_options(bad_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(bad_config), "runtime", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("migrate", "downgrade", "current", "check", "status"))


def test_a_command_refuses_bad_options_in_one_line(bad_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(bad_config), "runtime", "migrate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runtime.postgres.pool_size" in err and "'five'" in err


def test_the_hook_binds_each_command_to_what_it_was_given(tmp_path: Path) -> None:
    options: Mapping[str, Any] = {"schema": "Not A Schema"}
    commands = {c.name: c for c in PostgresStore().runtime_commands(options=options, data_dir=tmp_path)}
    assert set(commands) == {"migrate", "downgrade", "current", "check"}
    with pytest.raises(ConfigError) as refused:  # parsed when the command runs, from the options it was bound to
        commands["current"].main([], standalone_mode=False)
    assert refused.value.key == "runtime.postgres.schema"
