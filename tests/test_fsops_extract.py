"""Extraction (zip, tar, tar.gz), include/exclude rules, the preset and cleanup, on real directories."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from revaer_core import ConfigError, JobStatus
from revaer_core.fsops import FsOpsPolicy
from revaer_core.fsops.rules import Glob
from tests.support.fsops import Layout, Services, new_id, run, status, tar_bytes, tree, zip_bytes

MEMBERS = {"Album/01.flac": b"one", "Album/02.flac": b"two", "cover.jpg": b"jpg"}


@pytest.mark.parametrize(
    ("archive", "data"),
    [
        ("music.zip", zip_bytes(MEMBERS)),
        ("music.tar", tar_bytes(list(MEMBERS.items()))),
        ("music.tar.gz", tar_bytes(list(MEMBERS.items()), mode="w:gz")),
        ("music.tgz", tar_bytes(list(MEMBERS.items()), mode="w:gz")),
    ],
)
def test_archives_in_a_torrent_are_replaced_by_their_contents(
    layout: Layout, services: Services, archive: str, data: bytes
) -> None:
    layout.payload("Music", {archive: data, "info.nfo": b"nfo"})
    outcome = run(services(layout.settings()), status(new_id(), "Music", layout.downloads))
    assert outcome.status is JobStatus.MOVED, outcome.error
    assert tree(layout.library / "Music") == {**MEMBERS, "info.nfo": b"nfo"}
    assert (layout.downloads / "Music" / archive).exists()  # the download is left as it was (copy mode)


def test_a_single_file_archive_torrent_extracts_into_its_stem(layout: Layout, services: Services) -> None:
    layout.single("music.tar.gz", tar_bytes([("Album/01.flac", b"one")], mode="w:gz"))
    outcome = run(services(layout.settings()), status(new_id(), "music.tar.gz", layout.downloads))
    assert outcome.library_path == str(layout.library / "music")
    # "music/Album/01.flac" is one directory nested in the torrent's folder: flattened
    assert tree(layout.library) == {"music/01.flac": b"one"}


def test_extracted_archive_in_a_subfolder_lands_beside_it(layout: Layout, services: Services) -> None:
    layout.payload("Pack", {"disc1/part.zip": zip_bytes({"a.bin": b"a"}), "disc2/b.bin": b"b"})
    run(services(layout.settings()), status(new_id(), "Pack", layout.downloads))
    assert tree(layout.library / "Pack") == {"disc1/a.bin": b"a", "disc2/b.bin": b"b"}


def test_extract_off_transfers_the_archive_itself(layout: Layout, services: Services) -> None:
    data = zip_bytes(MEMBERS)
    layout.payload("Music", {"music.zip": data})
    run(services(layout.settings(extract=False, flatten=False)), status(new_id(), "Music", layout.downloads))
    assert tree(layout.library / "Music") == {"music.zip": data}


def test_a_corrupt_archive_fails_the_job_naming_it(layout: Layout, services: Services) -> None:
    layout.payload("Music", {"music.zip": b"PK\x03\x04 not really a zip"})
    outcome = run(services(layout.settings()), status(new_id(), "Music", layout.downloads))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.startswith(f"extract: archive {layout.downloads / 'Music' / 'music.zip'} is corrupt")


def test_the_preset_skips_samples_extras_proof_and_screens(layout: Layout, services: Services) -> None:
    kept = {"Movie.mkv": b"m", "Movie.srt": b"s", "Sampler.Of.Things.txt": b"t"}
    layout.payload(
        "Movie",
        {
            **kept,
            "Sample/movie-sample.mkv": b"x",
            "movie.sample.mkv": b"x",
            "sample.mkv": b"x",
            "Extras/behind.mkv": b"x",
            "Proof/proof.jpg": b"x",
            "Screens/01.png": b"x",
            "archive.zip": zip_bytes({"Screenshots/02.png": b"x", "bonus.mkv": b"b"}),
        },
    )
    run(services(layout.settings(preset="skip_extras")), status(new_id(), "Movie", layout.downloads))
    assert tree(layout.library / "Movie") == {**kept, "bonus.mkv": b"b"}


def test_include_and_exclude_rules(layout: Layout, services: Services) -> None:
    layout.payload(
        "Show",
        {"S01/e1.mkv": b"1", "S01/e1.nfo": b"n", "S02/e1.mkv": b"2", "S02/e1.txt": b"t", "Featurettes/f.mkv": b"f"},
    )
    settings = layout.settings(include=["*.mkv", "*.TXT"], exclude=["/Featurettes", "S02/*.txt"])
    run(services(settings), status(new_id(), "Show", layout.downloads))
    assert tree(layout.library / "Show") == {"S01/e1.mkv": b"1", "S02/e1.mkv": b"2"}


def test_only_selected_files_of_the_torrent_are_transferred(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"e1.mkv": b"1", "e2.mkv": b"partial"})
    torrent = status(new_id(), "Show", layout.downloads, files=["Show/e1.mkv"])
    run(services(layout.settings()), torrent)
    assert tree(layout.library / "Show") == {"e1.mkv": b"1"}


def test_everything_excluded_skips_the_job(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"e1.nfo": b"n"})
    outcome = run(services(layout.settings(exclude=["*.nfo"])), status(new_id(), "Show", layout.downloads))
    assert outcome.status is JobStatus.SKIPPED
    assert outcome.error is not None and "every file is excluded" in outcome.error
    assert tree(layout.library) == {}


def test_cleanup_drops_matching_files_unless_kept(layout: Layout, services: Services) -> None:
    layout.payload(
        "Show",
        {"e1.mkv": b"1", "e1.nfo": b"n", "e1.sfv": b"s", "notes/only.txt": b"t", "keep.important.txt": b"k"},
    )
    settings = layout.settings(cleanup=["*.nfo", "*.sfv", "*.txt"], cleanup_keep=["*.important.*"])
    run(services(settings), status(new_id(), "Show", layout.downloads))
    assert tree(layout.library / "Show") == {"e1.mkv": b"1", "keep.important.txt": b"k"}
    assert not (layout.library / "Show" / "notes").exists()  # emptied directory removed too
    assert tree(layout.downloads / "Show")["e1.nfo"] == b"n"  # the download is not cleaned


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("*.mkv", "a/b/c.MKV", True),
        ("sample", "Movie/Sample/x.mkv", True),
        ("sample", "Movie/Samples/x.mkv", False),
        ("/Extras", "Extras/a.mkv", True),
        ("/Extras", "Movie/Extras/a.mkv", False),
        ("**/Extras/*.mkv", "Movie/Extras/a.mkv", True),
        ("S0?/*.mkv", "S01/e.mkv", True),
        ("S0?/*.mkv", "S01/x/e.mkv", False),  # '*' stays inside one name
        ("[!a]*.txt", "b.txt", True),
        ("[!a]*.txt", "a.txt", False),
    ],
)
def test_glob_semantics(glob: str, path: str, matches: bool) -> None:
    assert Glob.compile(glob, "k").matches(PurePosixPath(path)) is matches


def test_a_broken_glob_is_a_config_error_naming_the_rule(layout: Layout) -> None:
    with pytest.raises(ConfigError, match=r"^fsops\.exclude\[1\]: glob '\[abc' has '\[' without a closing '\]'$"):
        FsOpsPolicy.from_settings(layout.settings(exclude=["*.nfo", "[abc"]), journal_dir=layout.journal)
