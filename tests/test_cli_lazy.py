"""``revaer run`` imports what the daemon runs and nothing of the other commands; ``--help`` still lists them all.

The imports are read from the real process: ``revaer run`` through the CLI's
``main``, which then prints ``sys.modules`` instead of exiting at once.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest

from revaer_core.cli import COMMANDS, cli, main

#: What ``revaer run`` must never import: other commands' code, the API client, migrations, the harness.
NOT_FOR_RUN = (
    "revaer_core.cli.api",
    "revaer_core.cli.client",
    "revaer_core.cli.control",
    "revaer_core.cli.demo",
    "revaer_core.cli.fsops",
    "revaer_core.cli.importer",
    "revaer_core.cli.plugins",
    "revaer_core.cli.runtime",
    "revaer_core.cli.torrents",
    "revaer_core.demo",
    "revaer_core.importers",
    "revaer_core.testing",
    "revaer_runtime_pg",
    "alembic",
    "httpx",
    "http.client",
    "pytest",
)


#: ``revaer ARGS...``, then every module the process imported, on the last line of stderr.
RUN_AND_LIST = (
    "import sys\n"
    "from revaer_core.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('modules:', *sorted(sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def imported(stderr: str) -> set[str]:
    line = stderr.rstrip().rpartition("\n")[2]
    assert line.startswith("modules: "), stderr[-2000:]
    return set(line.split()[1:])


def offending(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``names`` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def run_modules(tmp_path: Path, runtime: str) -> set[str]:
    """Every module a ``revaer run`` on the ``[runtime]`` table ``runtime`` imported by the time it was running."""
    config = tmp_path / "revaer.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n{runtime}\n'
        f'[engine]\ndownload_dir = "{tmp_path / "downloads"}"\nlisten_interfaces = "127.0.0.1:0"\n'
        "enable_dht = false\nenable_lsd = false\nenable_upnp = false\nenable_natpmp = false\n\n"
        '[api]\nhost = "127.0.0.1"\nport = 0\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAER_")}
    argv = [sys.executable, "-c", RUN_AND_LIST, "--config", str(config), "run"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env) as process:
        assert process.stderr is not None
        lines = []
        try:
            for line in process.stderr:
                lines.append(line)
                if line.startswith("revaer running"):
                    process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    stderr = "".join(lines)
    assert code == 0, stderr[-2000:]
    return imported(stderr)


def test_revaer_run_imports_nothing_it_does_not_run(tmp_path: Path) -> None:
    modules = run_modules(tmp_path, 'backend = "memory"\n')
    assert {"revaer_core.daemon", "revaer_core.cli.run", "revaer_runtime_memory.store", "litestar"} <= modules
    assert offending(modules, NOT_FOR_RUN) == []


#: What ``revaer run`` on PostgreSQL must not import: migrations, the admin commands, a server of its own, the ORM.
NOT_FOR_PG_RUN = (
    *(n for n in NOT_FOR_RUN if n != "revaer_runtime_pg"),
    "mako",
    "revaer_runtime_pg.commands",
    "revaer_runtime_pg.embedded",
    "revaer_runtime_pg.testing",
    "sqlalchemy.orm",
)


@pytest.mark.postgres
def test_revaer_run_on_postgres_imports_no_migrations_or_admin_commands(
    tmp_path: Path, pg_url: str, pg_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = f'backend = "postgres"\n\n[runtime.postgres]\ndsn = "{pg_url}"\nschema = "{pg_schema}"\n'
    (tmp_path / "migrate.toml").write_text(f"[runtime]\n{runtime}")
    assert main(["--config", str(tmp_path / "migrate.toml"), "runtime", "migrate"]) == 0, capsys.readouterr()
    modules = run_modules(tmp_path, runtime)
    assert {"revaer_runtime_pg.store", "sqlalchemy", "psycopg", "litestar"} <= modules
    assert offending(modules, NOT_FOR_PG_RUN) == []


def test_help_lists_every_command_without_importing_one() -> None:
    probe = (
        "import sys\n"
        "from revaer_core.cli import main\n"
        "code = main(['--help'])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('revaer_core.cli.'))), file=sys.stderr)\n"
    )
    listed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert listed.stderr.split() == ["revaer_core.cli.context", "revaer_core.cli.lazy"]
    for lazy in COMMANDS:
        assert re.search(rf"^  {re.escape(lazy.name)} +\S", listed.stdout, re.MULTILINE), lazy.name


def test_each_listed_help_is_the_commands_own() -> None:
    """The help ``revaer --help`` shows unloaded is the first paragraph of the command's own help."""
    ctx = click.Context(cli)
    for lazy in COMMANDS:
        command = cli.get_command(ctx, lazy.name)
        assert command is not None and command.name == lazy.name
        assert command.help is not None
        assert inspect.cleandoc(command.help).split("\n\n")[0].replace("\n", " ") == lazy.short_help, lazy.name
