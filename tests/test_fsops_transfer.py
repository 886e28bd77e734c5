"""Transfer modes, flatten and collisions, on real directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from revaer_core import JobStatus, TransferMode
from tests.support.fsops import Layout, Services, new_id, run, status, tree

PAYLOAD = {"Show.S01E01.mkv": b"episode one", "Subs/en.srt": b"subtitles"}


def test_copy_leaves_the_download_and_fills_the_library(layout: Layout, services: Services) -> None:
    layout.payload("Show", PAYLOAD)
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.MOVED and outcome.transfer_mode is TransferMode.COPY
    assert outcome.library_path == str(layout.library / "Show")
    assert tree(layout.library / "Show") == PAYLOAD
    assert tree(layout.downloads / "Show") == PAYLOAD
    assert not list((layout.library / ".revaer" / "work").iterdir())  # the work dir is cleaned up
    assert not [p for p in (layout.library / "Show").rglob("*") if p.name.endswith(".revaer-partial")]


def test_move_on_one_filesystem_renames_and_prunes_the_download(layout: Layout, services: Services) -> None:
    layout.payload("Show", PAYLOAD)
    inode = os.stat(layout.downloads / "Show" / "Show.S01E01.mkv").st_ino
    outcome = run(services(layout.settings(transfer_mode="move")), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.MOVED
    assert tree(layout.library / "Show") == PAYLOAD
    assert os.stat(layout.library / "Show" / "Show.S01E01.mkv").st_ino == inode  # a rename, not a copy
    assert not (layout.downloads / "Show").exists()


def test_move_keeps_excluded_files_in_the_download(layout: Layout, services: Services) -> None:
    layout.payload("Show", {**PAYLOAD, "Sample/clip.mkv": b"sample"})
    settings = layout.settings(transfer_mode="move", preset="skip_extras")
    run(services(settings), status(new_id(), "Show", layout.downloads))
    assert tree(layout.library / "Show") == PAYLOAD
    assert tree(layout.downloads / "Show") == {"Sample/clip.mkv": b"sample"}


def test_hardlink_shares_the_inode(layout: Layout, services: Services) -> None:
    layout.payload("Show", PAYLOAD)
    outcome = run(services(layout.settings(transfer_mode="hardlink")), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.MOVED and outcome.transfer_mode is TransferMode.HARDLINK
    for rel in PAYLOAD:
        assert os.path.samefile(layout.library / "Show" / rel, layout.downloads / "Show" / rel)


def test_move_across_filesystems_copies_then_deletes(
    layout: Layout, other_filesystem: Path, services: Services
) -> None:
    downloads = other_filesystem
    (downloads / "Show").mkdir()
    for rel, data in PAYLOAD.items():
        (downloads / "Show" / rel).parent.mkdir(parents=True, exist_ok=True)
        (downloads / "Show" / rel).write_bytes(data)
    outcome = run(services(layout.settings(transfer_mode="move")), status(new_id(), "Show", downloads))
    assert outcome.status is JobStatus.MOVED, outcome.error
    assert tree(layout.library / "Show") == PAYLOAD
    assert not (downloads / "Show").exists()


def test_hardlink_across_filesystems_fails_clearly_and_writes_nothing(
    layout: Layout, other_filesystem: Path, services: Services
) -> None:
    (other_filesystem / "Show").mkdir()
    (other_filesystem / "Show" / "a.mkv").write_bytes(b"a")
    outcome = run(services(layout.settings(transfer_mode="hardlink")), status(new_id(), "Show", other_filesystem))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith("transfer: hardlink mode needs the download and the library on one filesystem")
    assert "use transfer_mode 'copy' or 'move'" in outcome.error
    assert tree(layout.library) == {}
    assert (other_filesystem / "Show" / "a.mkv").read_bytes() == b"a"


@pytest.mark.parametrize("mode", ["copy", "move", "hardlink"])
def test_single_file_torrent_lands_as_the_file(layout: Layout, services: Services, mode: str) -> None:
    layout.single("movie.mkv", b"film")
    outcome = run(services(layout.settings(transfer_mode=mode)), status(new_id(), "movie.mkv", layout.downloads))
    assert outcome.library_path == str(layout.library / "movie.mkv")
    assert tree(layout.library) == {"movie.mkv": b"film"}
    assert (layout.downloads / "movie.mkv").exists() is (mode != "move")


def test_flatten_drops_a_single_nested_directory(layout: Layout, services: Services) -> None:
    layout.payload("Film.2020", {"Film.2020/film.mkv": b"f", "Film.2020/extra/notes.txt": b"n"})
    run(services(layout.settings()), status(new_id(), "Film.2020", layout.downloads))
    assert tree(layout.library / "Film.2020") == {"film.mkv": b"f", "extra/notes.txt": b"n"}


def test_flatten_leaves_a_folder_with_files_beside_the_directory(layout: Layout, services: Services) -> None:
    files = {"Inner/a.mkv": b"a", "readme.txt": b"r"}
    layout.payload("Pack", files)
    run(services(layout.settings()), status(new_id(), "Pack", layout.downloads))
    assert tree(layout.library / "Pack") == files


def test_flatten_off_keeps_the_nesting(layout: Layout, services: Services) -> None:
    layout.payload("Film", {"Film/film.mkv": b"f"})
    run(services(layout.settings(flatten=False)), status(new_id(), "Film", layout.downloads))
    assert tree(layout.library / "Film") == {"Film/film.mkv": b"f"}


def test_a_different_file_in_the_way_is_never_overwritten(layout: Layout, services: Services) -> None:
    layout.payload("Show", PAYLOAD)
    (layout.library / "Show").mkdir()
    (layout.library / "Show" / "Show.S01E01.mkv").write_bytes(b"someone else's")
    (layout.library / "Show" / "Show.S01E01 (2).mkv").write_bytes(b"and another")
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.MOVED
    assert tree(layout.library / "Show") == {
        "Show.S01E01.mkv": b"someone else's",
        "Show.S01E01 (2).mkv": b"and another",
        "Show.S01E01 (3).mkv": b"episode one",
        "Subs/en.srt": b"subtitles",
    }


def test_an_identical_file_in_the_way_counts_as_done(layout: Layout, services: Services) -> None:
    layout.payload("Show", PAYLOAD)
    (layout.library / "Show").mkdir()
    (layout.library / "Show" / "Show.S01E01.mkv").write_bytes(b"episode one")
    run(services(layout.settings(transfer_mode="move")), status(new_id(), "Show", layout.downloads))
    assert tree(layout.library / "Show") == PAYLOAD  # no "(2)" copy
    assert not (layout.downloads / "Show").exists()


def test_collisions_resolve_the_same_way_every_time(layout: Layout, services: Services) -> None:
    """Two libraries with the same clutter get the same names."""
    layout.single("movie.mkv", b"new film")
    results = []
    for library in (layout.root / "lib-a", layout.root / "lib-b"):
        library.mkdir()
        (library / "movie.mkv").write_bytes(b"old film")
        outcome = run(services(layout.settings(library_root=library)), status(new_id(), "movie.mkv", layout.downloads))
        results.append((Path(outcome.library_path or "").name, tree(library)))
    assert results[0] == results[1] == ("movie (2).mkv", {"movie.mkv": b"old film", "movie (2).mkv": b"new film"})


def test_a_file_where_a_directory_must_go_fails_naming_it(layout: Layout, services: Services) -> None:
    layout.payload("Show", PAYLOAD)
    (layout.library / "Show").write_bytes(b"a file named like the show")
    outcome = run(services(layout.settings()), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error == f"transfer: {layout.library / 'Show'} exists and is not a directory; not overwritten"
    assert (layout.library / "Show").read_bytes() == b"a file named like the show"
