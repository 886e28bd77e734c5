"""As root, PostgreSQL runs as ``postgres``, who cannot read a venv in a private home: its binaries are copied.

The copy (``revaer_runtime_pg.embedded.server_user_copy``) is checked here on a small tree shaped like
pgserver's, so each case is quick; the real binaries run from such a copy in
``test_a_private_cluster_starts_from_a_venv_postgres_cannot_read`` (and the embedded server, in
``test_pg_embedded.py``).
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import threading
from pathlib import Path

import psycopg
import pytest

from revaer_core import StoreUnavailable
from revaer_runtime_pg import embedded
from revaer_runtime_pg.testing import PrivateCluster
from tests.support.postgres import as_root_only, private_pgserver

BINARIES = ("initdb", "pg_ctl", "postgres")


@pytest.fixture(autouse=True)
def forget_checked_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees copies as a new process would: checked afresh, and announced in the log."""
    monkeypatch.setattr(embedded, "_copies", {})
    monkeypatch.setattr(embedded, "_said", set())


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A tree shaped like the pgserver wheel, in a private dir, with the modes a umask of 077 leaves."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    package = home / "site-packages" / "pgserver"
    for name in BINARIES:
        _write(package / "pginstall" / "bin" / name, "#!/bin/sh\necho 'pg_ctl (PostgreSQL) 16.2'\n", 0o700)
    _write(package / "pginstall" / "share" / "postgresql" / "postgresql.conf.sample", "# sample\n", 0o600)
    _write(package / "pginstall" / "lib" / "libpq.so.5.16", "not really a library\n", 0o700)
    (package / "pginstall" / "lib" / "libpq.so.5").symlink_to("libpq.so.5.16")
    _write(package / "__init__.py", "", 0o600)
    _write(package.parent / "pgserver.libs" / "libpq-084d956f.so.5.16", "bundled\n", 0o700)
    return package


@pytest.fixture
def cache(shared_dir: Path) -> Path:
    """A cache root the server user could enter (pytest's tmp dirs are private to their owner)."""
    return shared_dir


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _modes(root: Path) -> dict[str, int]:
    """Every entry's permission bits, by its path under ``root`` (symlinks have none of their own)."""
    entries = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in entries if not p.is_symlink()}


def test_a_copy_is_made_once_readable_by_all_and_writable_by_us_only(package: Path, cache: Path) -> None:
    copy = embedded.server_user_copy(package, "16", cache)

    assert copy.parent == cache and copy.name.startswith("revaer-pgserver-16-")
    assert [p.name for p in cache.iterdir()] == [copy.name], "the copy is renamed into place; no scratch is left"
    modes = _modes(copy)
    assert {m for p, m in modes.items() if (copy / p).is_dir()} == {0o755}
    assert modes["pgserver/pginstall/bin/postgres"] == 0o755
    assert modes["pgserver/pginstall/share/postgresql/postgresql.conf.sample"] == 0o644
    assert modes["pgserver.libs/libpq-084d956f.so.5.16"] == 0o755, "the bundled libraries keep their place"
    assert os.readlink(copy / "pgserver/pginstall/lib/libpq.so.5") == "libpq.so.5.16"
    assert not any(m & 0o022 for m in modes.values())

    postgres = (copy / "pgserver/pginstall/bin/postgres").stat()
    embedded._copies.clear()  # as a later process would: finds it, checks it, reuses it
    assert embedded.server_user_copy(package, "16", cache) == copy
    assert (copy / "pgserver/pginstall/bin/postgres").stat().st_ino == postgres.st_ino, "reused, not copied again"


def test_a_copy_of_ours_that_is_loosened_or_incomplete_is_replaced(package: Path, cache: Path) -> None:
    copy = embedded.server_user_copy(package, "16", cache)
    (copy / "pgserver/pginstall/bin/pg_ctl").chmod(0o777)
    embedded._copies.clear()
    assert embedded.server_user_copy(package, "16", cache) == copy
    assert stat.S_IMODE((copy / "pgserver/pginstall/bin/pg_ctl").stat().st_mode) == 0o755

    (copy / "pgserver/pginstall/bin/initdb").unlink()
    embedded._copies.clear()
    assert embedded.server_user_copy(package, "16", cache) == copy
    assert (copy / "pgserver/pginstall/bin/initdb").is_file()
    assert [p.name for p in cache.iterdir()] == [copy.name], "the stale copy is gone"


def test_a_changed_pgserver_gets_a_copy_of_its_own(package: Path, cache: Path) -> None:
    first = embedded.server_user_copy(package, "16", cache)
    _write(package / "pginstall" / "bin" / "postgres", "#!/bin/sh\necho a newer build\n", 0o755)
    embedded._copies.clear()
    second = embedded.server_user_copy(package, "16", cache)
    assert second != first and "newer build" in (second / "pgserver/pginstall/bin/postgres").read_text("utf-8")


def test_copies_made_at_once_end_as_one(package: Path, cache: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def copy() -> None:
        try:
            results.append(embedded.server_user_copy(package, "16", cache))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=copy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1 and [p.name for p in cache.iterdir()] == [results[0].name]


def test_a_cache_others_could_write_into_is_refused(package: Path, cache: Path) -> None:
    cache.chmod(0o777)
    with pytest.raises(StoreUnavailable, match="others could replace them there"):
        embedded.server_user_copy(package, "16", cache)
    cache.chmod(0o1777)  # sticky, as /var/tmp: nobody can rename our copy away
    embedded.server_user_copy(package, "16", cache)


@as_root_only
def test_a_copy_someone_else_made_is_refused(package: Path, cache: Path) -> None:
    squatter = embedded.server_user_copy(package, "16", cache)
    user = pwd.getpwnam(embedded.SERVER_USER)
    os.chown(squatter, user.pw_uid, user.pw_gid)
    embedded._copies.clear()
    with pytest.raises(StoreUnavailable, match=r"will not run binaries from .*not a directory of ours.*remove it"):
        embedded.server_user_copy(package, "16", cache)


def test_as_an_unprivileged_user_the_binaries_are_used_where_they_are(
    package: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "_as_root", lambda: False)
    monkeypatch.setattr(embedded, "candidate_bindirs", lambda: [package / "pginstall" / "bin"])
    binaries = embedded.find_binaries(cache_root=cache)
    assert binaries.bindir == package / "pginstall" / "bin" and binaries.major == "16"
    assert list(cache.iterdir()) == []


@as_root_only
def test_as_root_binaries_postgres_cannot_reach_are_copied_and_it_is_said_in_one_line(
    package: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bindir = package / "pginstall" / "bin"
    monkeypatch.setattr(embedded, "candidate_bindirs", lambda: [bindir])
    assert not embedded.server_user_can_run(bindir)
    with caplog.at_level(logging.INFO, logger=embedded.__name__):
        binaries = embedded.find_binaries(cache_root=cache)
        again = embedded.find_binaries("16", cache_root=cache)
    assert binaries == again and binaries.bindir.is_relative_to(cache) and binaries.major == "16"
    assert embedded.server_user_can_run(binaries.bindir)
    said = [r.getMessage() for r in caplog.records if r.name == embedded.__name__]
    assert said == [
        f"embedded PostgreSQL: running pgserver's binaries from {binaries.bindir.parents[2]} "
        f"(the 'postgres' user cannot read {package})"
    ], "one line, once per process"


@as_root_only
def test_as_root_other_binaries_postgres_cannot_reach_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "home" / "pg" / "bin"
    for name in BINARIES:
        _write(bindir / name, "#!/bin/sh\necho 'pg_ctl (PostgreSQL) 16.2'\n", 0o755)
    (tmp_path / "home").chmod(0o700)
    monkeypatch.setattr(embedded, "candidate_bindirs", lambda: [bindir])
    with pytest.raises(StoreUnavailable, match="who cannot run PostgreSQL 16 in") as info:
        embedded.find_binaries()
    assert "\n" not in str(info.value)


@pytest.mark.postgres
@as_root_only
def test_a_private_cluster_starts_from_a_venv_postgres_cannot_read(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = private_pgserver(tmp_path / "home")
    private_bindir = site / "pgserver" / "pginstall" / "bin"
    assert not embedded.server_user_can_run(private_bindir), "the venv was meant to be out of postgres' reach"
    monkeypatch.setattr(embedded, "candidate_bindirs", lambda: [private_bindir])
    monkeypatch.setattr(embedded, "CACHE_ROOT", cache)
    monkeypatch.setattr(PrivateCluster, "_template", None)  # initdb again, with these binaries

    with PrivateCluster() as cluster:
        cluster.wait_ready()
        with psycopg.connect(cluster.url) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    assert cluster.binaries.bindir.is_relative_to(cache)
    assert row is not None and row[0].split(".")[0] == cluster.binaries.major
