"""Permissions: chmod, umask and owner/group on what FsOps creates; disk-full and permission errors."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from revaer_core import JobStatus
from revaer_core.fsops import FsOpsPolicy, JobRequest, Pipeline, StepFailed
from revaer_core.fsops.policy import journal_dir_of
from tests.support.fsops import Layout, Services, new_id, run, status, tree, unprivileged


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_chmod_applies_to_files_and_created_directories(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"S01/e1.mkv": b"1", "e0.mkv": b"0"})
    (layout.library / "Existing").mkdir(mode=0o700)
    run(services(layout.settings(chmod_file="0640", chmod_dir="0o750")), status(new_id(), "Show", layout.downloads))
    show = layout.library / "Show"
    assert (mode(show / "e0.mkv"), mode(show / "S01" / "e1.mkv")) == (0o640, 0o640)
    assert (mode(show), mode(show / "S01")) == (0o750, 0o750)
    assert mode(layout.library / "Existing") == 0o700  # only what FsOps created


def test_umask_shapes_modes_when_chmod_is_unset(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"S01/e1.mkv": b"1"})
    (layout.downloads / "Show" / "S01" / "e1.mkv").chmod(0o777)
    run(services(layout.settings(umask="027", flatten=False)), status(new_id(), "Show", layout.downloads))
    assert mode(layout.library / "Show" / "S01" / "e1.mkv") == 0o640
    assert mode(layout.library / "Show" / "S01") == 0o750


def test_owner_and_group_are_set_when_permitted(layout: Layout, services: Services) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing the owner to another user needs root")
    layout.payload("Show", {"e1.mkv": b"1"})
    run(services(layout.settings(owner="nobody", group="65534")), status(new_id(), "Show", layout.downloads))
    for path in (layout.library / "Show", layout.library / "Show" / "e1.mkv"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (65534, 65534)


@pytest.fixture
def open_dirs(shared_dir: Path) -> Path:
    (shared_dir / "data").mkdir()
    (shared_dir / "data").chmod(0o777)  # the data dir is the daemon user's own: FsOps keeps its journal there
    return shared_dir


def _pipeline_text(library: Path, downloads: Path, **settings: object) -> str:
    """Run one job with the Pipeline (no threads: fit for a forked child); 'ok <path>' or the error."""
    table = Layout(root=library.parent, downloads=downloads, library=library, outside=library.parent).settings(
        **settings
    )
    policy = FsOpsPolicy.from_settings(table, journal_dir=journal_dir_of(library.parent / "data"))
    pipeline = Pipeline(policy)
    request = JobRequest(torrent_id=new_id(), name="Show", source=downloads / "Show")
    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("revaer_core.fsops").addHandler(handler)
    try:
        meta_file, meta = pipeline.open(request)
        result = pipeline.run(request, meta_file, meta)
    except StepFailed as exc:
        return str(exc)
    finally:
        logging.getLogger("revaer_core.fsops").removeHandler(handler)
    uid = os.stat(result.library_path or "").st_uid
    return f"ok {result.library_path} uid={uid} warnings={warnings}"


def test_owner_is_left_alone_with_a_warning_when_not_permitted(open_dirs: Path) -> None:
    downloads, library = open_dirs / "downloads", open_dirs / "library"
    (downloads / "Show").mkdir(parents=True)
    (downloads / "Show" / "e1.mkv").write_bytes(b"1")
    for folder in (downloads, downloads / "Show", library):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o777)
    (downloads / "Show" / "e1.mkv").chmod(0o644)
    text = unprivileged(lambda: _pipeline_text(library, downloads, owner="0", group="0"))
    expected_uid = 65534 if os.geteuid() == 0 else os.geteuid()
    assert text.startswith(f"ok {library / 'Show'} uid={expected_uid} warnings=")
    assert "not permitted to set owner 0 / group 0; left as the process's" in text


def test_a_permission_error_fails_the_job_naming_the_path(open_dirs: Path) -> None:
    downloads, library = open_dirs / "downloads", open_dirs / "library"
    (downloads / "Show").mkdir(parents=True)
    (downloads / "Show" / "e1.mkv").write_bytes(b"1")
    (downloads / "Show" / "e1.mkv").chmod(0o644)
    library.mkdir()
    for folder in (downloads, downloads / "Show", library):
        folder.chmod(0o777)
    (library / "Show").mkdir(mode=0o555)  # a folder of the show exists and this process may not write in it
    (library / "Show").chmod(0o555)
    text = unprivileged(lambda: _pipeline_text(library, downloads))
    target = library / "Show" / "e1.mkv"
    assert text.startswith(f"transfer: permission denied while copying {downloads / 'Show' / 'e1.mkv'} to ")
    assert str(target.parent) in text
    assert not target.exists()


def test_a_library_root_that_cannot_be_written_fails_naming_it(open_dirs: Path) -> None:
    downloads, library = open_dirs / "downloads", open_dirs / "library"
    (downloads / "Show").mkdir(parents=True)
    (downloads / "Show" / "e1.mkv").write_bytes(b"1")
    library.mkdir(mode=0o555)
    library.chmod(0o555)
    text = unprivileged(lambda: _pipeline_text(library, downloads))
    assert text == (
        f"prepare_directories: permission denied while creating directory {library / '.revaer'}: Permission denied"
    )


def test_disk_full_fails_the_job_naming_the_path_and_leaves_no_partial_file(
    layout: Layout, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout.payload("Show", {"e1.mkv": b"1" * 4096})
    real_copyfile = shutil.copyfile

    def fill_the_disk(src: Path, dst: Path, *, follow_symlinks: bool = True) -> None:
        Path(dst).write_bytes(b"1" * 100)  # part of the file made it before the disk filled up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copyfile", fill_the_disk)
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    monkeypatch.setattr(shutil, "copyfile", real_copyfile)
    target = layout.library / "Show" / "e1.mkv"
    assert outcome.status is JobStatus.FAILED
    assert outcome.error == (
        f"transfer: disk full while copying {layout.downloads / 'Show' / 'e1.mkv'} to {target}: No space left on device"
    )
    assert tree(layout.library) == {}  # neither the file nor its partial copy
