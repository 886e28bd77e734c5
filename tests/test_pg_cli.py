"""``revaer runtime migrate | current | check | downgrade`` and ``status`` with the postgres backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core.cli import main
from revaer_runtime_pg import migrate

pytestmark = pytest.mark.postgres


@pytest.fixture
def config(pg_url: str, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "revaer.toml"
    path.write_text(f'[runtime]\nbackend = "postgres"\n\n[runtime.postgres]\nschema = "{pg_schema}"\n', "utf-8")
    monkeypatch.setenv("REVAER_DATABASE_URL", pg_url)
    monkeypatch.setenv("REVAER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REVAER_RUNTIME_BACKEND", raising=False)
    return path


def _run(config: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), "runtime", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_schema_lifecycle_from_the_command_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(config, capsys, "current")
    assert (code, err.count("\n")) == (3, 1) and "no revision yet" in out and "revaer runtime migrate" in err

    code, out, err = _run(config, capsys, "check")
    assert code == 3 and "connection: ok" in out and "revaer runtime migrate" in err

    code, out, _ = _run(config, capsys, "migrate")
    assert code == 0 and f"at {migrate.head()} (up to date)" in out
    code, out, _ = _run(config, capsys, "migrate")  # again: nothing to do, still fine
    assert code == 0

    code, out, _ = _run(config, capsys, "current")
    assert code == 0 and "up to date" in out
    code, out, _ = _run(config, capsys, "check")
    assert code == 0 and "torrents: 0 rows" in out and "fs_job_history: 0 rows" in out

    code, out, _ = _run(config, capsys, "status")
    revision_line = next(line for line in out.splitlines() if line.startswith("schema revision"))
    assert code == 0 and revision_line.split()[2:] == [migrate.head(), "(head", f"{migrate.head()})"]

    code, out, _ = _run(config, capsys, "downgrade", "base", "--yes")
    assert code == 0 and "no revision yet" in out


def test_the_backend_commands_are_listed_in_help(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(config, capsys, "--help")
    assert code == 0
    for name in ("migrate", "downgrade", "current", "check", "status"):
        assert f"  {name}" in out


def test_a_bad_revision_is_one_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(config, capsys, "migrate")
    code, _, err = _run(config, capsys, "downgrade", "no-such-revision", "--yes")
    assert code == 3 and err.count("\n") == 1 and "no-such-revision" in err


def test_an_unreachable_server_is_one_line_without_the_password(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVAER_DATABASE_URL", "postgresql://revaer:pa55-w0rd@127.0.0.1:1/revaer?connect_timeout=2")
    code, out, err = _run(config, capsys, "check")
    assert code == 3 and err.count("\n") == 1 and "pa55" not in out + err and "Traceback" not in err
