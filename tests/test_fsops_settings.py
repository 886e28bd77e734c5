"""The [fsops] section: loaded from TOML, every problem a ConfigError naming fsops.<key>."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core import ConfigError, TransferMode
from revaer_core.fsops import FsOpsPolicy
from revaer_core.settings import FsOpsPreset, Settings, load_settings


def load(tmp_path: Path, body: str) -> Settings:
    return load_settings(_write(tmp_path, body), env={})


def test_the_fsops_section_loads_every_key(tmp_path: Path) -> None:
    path = tmp_path / "revaer.toml"
    path.write_text(
        f"""
[fsops]
enabled = true
library_root = "{tmp_path / "lib"}"
allowed_roots = ["{tmp_path}"]
transfer_mode = "hardlink"
extract = false
flatten = false
include = ["*.mkv"]
exclude = ["*.nfo"]
preset = "skip_extras"
cleanup = ["*.txt"]
cleanup_keep = ["keep.txt"]
chmod_file = "0644"
chmod_dir = "0755"
owner = "nobody"
group = "65534"
umask = "022"
workers = 3
""",
        encoding="utf-8",
    )
    fsops = load_settings(path, env={}).fsops
    assert fsops.library_root == tmp_path / "lib" and fsops.allowed_roots == (tmp_path,)
    assert (fsops.transfer_mode, fsops.preset) == (TransferMode.HARDLINK, FsOpsPreset.SKIP_EXTRAS)
    assert (fsops.include, fsops.exclude, fsops.cleanup, fsops.cleanup_keep) == (
        ("*.mkv",),
        ("*.nfo",),
        ("*.txt",),
        ("keep.txt",),
    )
    policy = FsOpsPolicy.from_settings(fsops, journal_dir=tmp_path / "journal")
    assert (policy.file_mode, policy.dir_mode, policy.uid, policy.gid) == (0o644, 0o755, 65534, 65534)


def test_fsops_is_off_by_default(tmp_path: Path) -> None:
    assert load(tmp_path, "").fsops.enabled is False


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ('chmod_file = "0999"', "fsops.chmod_file", "expected an octal mode"),
        ('chmod_dir = "rwx"', "fsops.chmod_dir", "expected an octal mode"),
        ('umask = "1777"', "fsops.umask", "expected an octal mode up to 777"),
        ('transfer_mode = "symlink"', "fsops.transfer_mode", "one of 'copy', 'move', 'hardlink'"),
        ('include = "*.mkv"', "fsops.include", "expected a list, each item a string"),
        ("exclude = [1]", "fsops.exclude[0]", "expected a string"),
        ('library_root = "relative/lib"', "fsops.library_root", "must be an absolute path"),
        ('allowed_roots = ["rel"]', "fsops.allowed_roots", "must be an absolute path"),
        ("workers = 0", "fsops.workers", "must be between 1 and 64, got 0"),
        ("libary_root = '/x'", "fsops.libary_root", "did you mean 'library_root'?"),
        ('preset = "everything"', "fsops.preset", "one of 'none', 'skip_extras'"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[fsops]\n{body}\n")
    assert caught.value.key == key
    assert problem in str(caught.value)


def test_enabled_needs_a_library_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^fsops\.library_root: required when fsops\.enabled is true$"):
        load(tmp_path, "[fsops]\nenabled = true\n")


def test_an_unknown_owner_is_named(tmp_path: Path) -> None:
    fsops = load_settings(
        _write(tmp_path, f'[fsops]\nlibrary_root = "{tmp_path}"\nowner = "no-such-user-revaer"\n'), env={}
    ).fsops
    with pytest.raises(ConfigError, match=r"^fsops\.owner: no such user 'no-such-user-revaer'$"):
        FsOpsPolicy.from_settings(fsops, journal_dir=tmp_path / "journal")


def test_unknown_section_lists_fsops(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"known sections: .*fsops"):
        load(tmp_path, "[fsopz]\n")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "revaer.toml"
    path.write_text(body, encoding="utf-8")
    return path
