"""FsOps' job journal: kept under the data dir, and trusted only as far as the store and the folders vouch for it.

Each test forges or moves a real journal document (written by a real run that
was interrupted) and checks that FsOps refuses it: the victim's files never
reach the library, the refusal is logged, and the forged file is kept aside.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from revaer_core import JobStatus, RuntimeStore
from revaer_core.fsops.paths import META_DIR
from tests.support.fsops import Events, Layout, Services, SimulatedCrash, new_id, run, status, tree

SECRET = b"the victim's private file"


def _interrupted(layout: Layout, services: Services, store: RuntimeStore | None = None) -> tuple[UUID, Path]:
    """A job of torrent ``Show`` that died before its transfer: (torrent id, its journal file)."""
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    with pytest.raises(SimulatedCrash):
        services(layout.settings(), store, publish=Events(crash_before="transfer")).submit(torrent).result(timeout=10)
    journal = layout.journal / f"{torrent.id}.meta.json"
    assert journal.is_file()
    return torrent.id, journal


def _forge(journal: Path, **request: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(journal.read_text())
    document["request"].update(request)
    journal.write_text(json.dumps(document))
    return document


def _victim(layout: Layout) -> Path:
    victim = layout.outside / "private"
    victim.mkdir()
    (victim / "secret.txt").write_bytes(SECRET)
    return victim


def _library_holds_secret(layout: Layout) -> bool:
    return any(data == SECRET for data in tree(layout.library).values())


def test_the_journal_lives_under_the_data_dir_not_in_the_library(layout: Layout, services: Services) -> None:
    _, journal = _interrupted(layout, services)
    assert journal.parent == layout.root / "data" / "fsops"
    assert not list((layout.library / META_DIR).glob("*.meta.json"))


def test_a_journal_whose_source_is_not_the_stored_jobs_is_refused_and_the_stored_job_runs(
    layout: Layout, services: Services, memory_store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    torrent_id, journal = _interrupted(layout, services, memory_store)
    victim = _victim(layout)
    _forge(journal, source=str(victim), name="private")
    with caplog.at_level(logging.WARNING, logger="revaer_core.fsops"):
        outcomes = [f.result(timeout=10) for f in services(layout.settings(), memory_store).resume_pending()]
    assert [(o.torrent_id, o.status) for o in outcomes] == [(torrent_id, JobStatus.MOVED)]
    assert tree(layout.library) == {"Show/a.mkv": b"a"} and not _library_holds_secret(layout)
    assert (victim / "secret.txt").read_bytes() == SECRET
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and str(victim) in refused[0] and "the stored job runs afresh" in refused[0]
    assert len(list(layout.journal.glob(f"{torrent_id}.meta.json.refused-*"))) == 1


def test_a_journal_naming_a_torrent_the_store_never_had_copies_nothing(
    layout: Layout, services: Services, memory_store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    _, journal = _interrupted(layout, services, memory_store)
    victim = _victim(layout)
    stranger = new_id()
    document = _forge(journal, source=str(victim), name="private", torrent_id=str(stranger))
    document["torrent_id"] = str(stranger)
    planted = layout.journal / f"{stranger}.meta.json"
    planted.write_text(json.dumps(document))
    journal.unlink()
    with caplog.at_level(logging.WARNING, logger="revaer_core.fsops"):
        futures = services(layout.settings(), memory_store).resume_pending()
        outcomes = [f.result(timeout=10) for f in futures]
    assert stranger not in [o.torrent_id for o in outcomes]
    assert not _library_holds_secret(layout)
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"the store holds no torrent or job {stranger}" in m and "nothing is copied" in m for m in messages)
    assert not planted.exists()


def test_without_a_store_a_journal_source_outside_the_download_folders_is_refused(
    layout: Layout, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    _, journal = _interrupted(layout, services)
    victim = _victim(layout)
    _forge(journal, source=str(victim), name="private")
    with caplog.at_level(logging.WARNING, logger="revaer_core.fsops"):
        assert services(layout.settings()).resume_pending() == []
    assert tree(layout.library) == {} and (victim / "secret.txt").read_bytes() == SECRET
    assert any("lies outside the download folders" in r.getMessage() for r in caplog.records)


def test_a_journal_whose_plan_reaches_outside_the_source_is_refused_and_the_job_starts_over(
    layout: Layout, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    torrent_id, journal = _interrupted(layout, services)
    victim = _victim(layout)
    document = json.loads(journal.read_text())
    document["state"]["plan"] = [["Show/secret.txt", str(victim / "secret.txt"), "source"]]
    journal.write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, logger="revaer_core.fsops"):
        outcome = run(services(layout.settings()), status(torrent_id, "Show", layout.downloads))
    assert outcome.status is JobStatus.MOVED and outcome.resumed_from is None  # started over, from step one
    assert tree(layout.library) == {"Show/a.mkv": b"a"} and not _library_holds_secret(layout)
    assert any("would take" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_a_journal_left_in_the_library_by_an_earlier_version_is_ignored_with_a_warning(
    layout: Layout, services: Services, memory_store: RuntimeStore, caplog: pytest.LogCaptureFixture
) -> None:
    torrent_id, journal = _interrupted(layout, services, memory_store)
    legacy = layout.library / META_DIR / journal.name
    legacy.parent.mkdir(parents=True, exist_ok=True)
    journal.rename(legacy)  # as an earlier version left it
    with caplog.at_level(logging.WARNING, logger="revaer_core.fsops"):
        outcomes = [f.result(timeout=10) for f in services(layout.settings(), memory_store).resume_pending()]
    assert [(o.torrent_id, o.status, o.resumed_from) for o in outcomes] == [(torrent_id, JobStatus.MOVED, None)]
    assert tree(layout.library) == {"Show/a.mkv": b"a"}
    assert any("ignores 1 job journal(s)" in r.getMessage() for r in caplog.records)
    assert legacy.is_file()  # left for the operator to check, never read as a job
