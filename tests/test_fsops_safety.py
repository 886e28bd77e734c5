"""Untrusted names and paths: refused, and nothing ever written outside the library root."""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from revaer_core import ConfigError, JobStatus
from revaer_core.fsops import FsOpsPolicy
from tests.support.fsops import Layout, Services, new_id, run, status, tar_bytes, tree, zip_bytes


def outside_library(layout: Layout) -> dict[str, bytes]:
    """Every file under the test's root except the library and FsOps' journal: what FsOps must never change."""
    return {k: v for k, v in tree(layout.root).items() if not k.startswith(("library/", "data/fsops/"))}


def assert_refused(layout: Layout, services: Services, name: str | None, expected: str, **settings: object) -> None:
    before = outside_library(layout)
    outcome = run(services(layout.settings(**settings)), status(new_id(), name, layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and expected in outcome.error, outcome.error
    assert outside_library(layout) == before
    assert tree(layout.library) == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..", "allow_list: torrent name '..' is not a usable file name"),
        ("../outside", "allow_list: torrent name '../outside' contains a path separator"),
        ("/etc", "allow_list: torrent name '/etc' contains a path separator"),
        ("..\\outside", "contains a path separator"),
        ("evil\x00.mkv", "allow_list: torrent name 'evil\\x00.mkv' contains a NUL byte"),
        (".revaer", "is reserved for FsOps metadata"),
        ("", "is not a usable file name"),
        (None, "is not a usable file name"),
    ],
)
def test_unsafe_torrent_names_are_refused(layout: Layout, services: Services, name: str | None, expected: str) -> None:
    (layout.downloads / "ok").mkdir()
    assert_refused(layout, services, name, expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Show/../../outside/keep.txt", "climbs out of its folder with '..'"),
        ("/etc/passwd", "is absolute"),
        ("C:\\Windows\\x.dll", "is absolute"),
        ("Show/a\x00.mkv", "contains a NUL byte"),
        ("Other/a.mkv", "lies outside the torrent's folder 'Show'"),
    ],
)
def test_unsafe_file_paths_in_the_torrent_are_refused(
    layout: Layout, services: Services, path: str, expected: str
) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    before = outside_library(layout)
    torrent = status(new_id(), "Show", layout.downloads, files=["Show/a.mkv", path])
    outcome = run(services(layout.settings()), torrent)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("locate_source: file path in torrent")
    assert expected in outcome.error
    assert outside_library(layout) == before and tree(layout.library) == {}


def test_a_symlink_out_of_the_torrent_is_refused(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    (layout.downloads / "Show" / "steal").symlink_to(layout.outside / "keep.txt")
    assert_refused(layout, services, "Show", "points outside the torrent's folder")


def test_a_symlinked_directory_out_of_the_torrent_is_refused(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    (layout.downloads / "Show" / "dir").symlink_to(layout.outside, target_is_directory=True)
    assert_refused(layout, services, "Show", f"symlink {layout.downloads / 'Show' / 'dir'} points outside")


def test_a_symlink_inside_the_torrent_is_skipped_not_followed(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    (layout.downloads / "Show" / "alias.mkv").symlink_to("a.mkv")
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.MOVED
    assert tree(layout.library / "Show") == {"a.mkv": b"a"}
    assert not any(p.is_symlink() for p in (layout.library / "Show").rglob("*"))


def test_a_symlinked_payload_is_refused(layout: Layout, services: Services) -> None:
    (layout.downloads / "Show").symlink_to(layout.outside, target_is_directory=True)
    assert_refused(layout, services, "Show", "locate_source: source")


def test_a_fifo_in_the_torrent_is_refused(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    os.mkfifo(layout.downloads / "Show" / "pipe")
    assert_refused(layout, services, "Show", "is a device, FIFO or socket; refused")


def test_a_device_file_in_the_torrent_is_refused(layout: Layout, services: Services) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    layout.payload("Show", {"a.mkv": b"a"})
    os.mknod(layout.downloads / "Show" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert_refused(layout, services, "Show", "is a device, FIFO or socket; refused")


def test_a_library_folder_symlinked_elsewhere_is_refused(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    (layout.library / "Show").symlink_to(layout.outside, target_is_directory=True)
    before = outside_library(layout)
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("allow_list: destination")
    assert outside_library(layout) == before


def test_a_library_subfolder_symlinked_elsewhere_is_refused_before_any_write(
    layout: Layout, services: Services
) -> None:
    layout.payload("Show", {"a.mkv": b"a", "Subs/en.srt": b"s"})
    (layout.library / "Show").mkdir()
    (layout.library / "Show" / "Subs").symlink_to(layout.outside, target_is_directory=True)
    before = outside_library(layout)
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("transfer: destination")
    assert outside_library(layout) == before
    assert not (layout.library / "Show" / "a.mkv").exists()  # targets are all checked before the first write


def test_the_library_root_must_be_under_an_allowed_root(layout: Layout) -> None:
    with pytest.raises(ConfigError, match=r"^fsops\.library_root: .* is not under any of fsops\.allowed_roots$"):
        FsOpsPolicy.from_settings(layout.settings(allowed_roots=[layout.outside]), journal_dir=layout.journal)


def test_a_library_root_swapped_for_a_symlink_is_refused_at_run_time(layout: Layout, services: Services) -> None:
    allowed = layout.root / "allowed"
    library = allowed / "lib"
    library.mkdir(parents=True)
    service = services(layout.settings(library_root=library, allowed_roots=[allowed]))
    library.rmdir()
    library.symlink_to(layout.outside, target_is_directory=True)
    layout.payload("Show", {"a.mkv": b"a"})
    before = outside_library(layout)
    outcome = run(service, status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("validate_policy: library root")
    assert outside_library(layout) == before


def _zip_symlink() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


@pytest.mark.parametrize(
    ("archive", "data", "expected"),
    [
        ("slip.zip", zip_bytes({"ok.txt": b"ok", "../../outside/evil.txt": b"x"}), "climbs out of its folder"),
        ("abs.zip", zip_bytes({"/tmp/evil.txt": b"x"}), "is absolute"),  # noqa: S108
        ("drive.zip", zip_bytes({"C:\\evil.txt": b"x"}), "is absolute"),
        ("backslash.zip", zip_bytes({"..\\..\\evil.txt": b"x"}), "climbs out of its folder"),
        ("link.zip", _zip_symlink(), "member 'link' is a symlink; refused"),
        ("slip.tar", tar_bytes([("ok.txt", b"ok"), ("../evil.txt", b"x")]), "climbs out of its folder"),
        ("abs.tar.gz", tar_bytes([("/etc/evil", b"x")], mode="w:gz"), "is absolute"),
        ("sym.tar", tar_bytes([_tar_member("link", tarfile.SYMTYPE, "/etc/passwd")]), "is a link to '/etc/passwd'"),
        ("hard.tar", tar_bytes([_tar_member("link", tarfile.LNKTYPE, "../outside/keep.txt")]), "is a link to"),
        ("dev.tar", tar_bytes([_tar_member("null", tarfile.CHRTYPE)]), "is a device, FIFO or socket; refused"),
        ("fifo.tar", tar_bytes([_tar_member("pipe", tarfile.FIFOTYPE)]), "is a device, FIFO or socket; refused"),
    ],
)
def test_unsafe_archive_members_refuse_the_whole_archive(
    layout: Layout, services: Services, archive: str, data: bytes, expected: str
) -> None:
    layout.payload("Pack", {archive: data, "readme.txt": b"r"})
    before = outside_library(layout)
    outcome = run(services(layout.settings()), status(new_id(), "Pack", layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("extract: archive"), outcome.error
    assert expected in outcome.error
    assert outside_library(layout) == before
    assert tree(layout.library) == {}  # checked before anything was extracted, and nothing transferred
    assert not list(Path("/tmp").glob("evil*"))  # noqa: S108
