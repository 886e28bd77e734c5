"""Resumable metadata: a crash at any point resumes at the first unfinished step and ends as an
uninterrupted run would; a finished job is not redone; bad metadata is moved aside."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from revaer_core import JobEvent, JobStatus, RuntimeStore
from revaer_core.fsops import STEP_NAMES
from revaer_core.fsops import steps as steps_module
from revaer_core.fsops import transfer as transfer_module
from revaer_core.fsops.meta import JobMeta
from revaer_core.fsops.request import JobRequest
from revaer_core.jobs import TransferMode
from tests.support.fsops import (
    Events,
    Layout,
    Services,
    SimulatedCrash,
    new_id,
    run,
    status,
    tree,
    zip_bytes,
)
from tests.support.stores import FaultyStore

#: A payload that gives every step something to do: nesting to flatten, an archive, cleanup.
PAYLOAD = {
    "Show/e1.mkv": b"episode 1" * 100,
    "Show/e2.mkv": b"episode 2" * 100,
    "Show/e1.nfo": b"nfo",
    "Show/extras.zip": zip_bytes({"bonus/b.mkv": b"bonus", "bonus/b.txt": b"txt"}),
}
SETTINGS = {"cleanup": ["*.nfo", "*.txt"], "chmod_file": "0640", "chmod_dir": "0750"}


def reference(layout: Layout, services: Services, mode: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Library and download trees after an uninterrupted run, in a library of their own."""
    downloads, library = layout.root / "ref-downloads", layout.root / "ref-library"
    for rel, data in PAYLOAD.items():
        (downloads / "Pack" / rel).parent.mkdir(parents=True, exist_ok=True)
        (downloads / "Pack" / rel).write_bytes(data)
    outcome = run(
        services(layout.settings(library_root=library, transfer_mode=mode, **SETTINGS)),
        status(new_id(), "Pack", downloads),
    )
    assert outcome.status is JobStatus.MOVED, outcome.error
    return tree(library), tree(downloads)


def leftovers(library: Path) -> list[Path]:
    """Partial files and work dirs a finished job must not leave behind."""
    partial = [p for p in library.rglob("*") if p.name.endswith(transfer_module.PARTIAL_SUFFIX)]
    work = library / ".revaer" / "work"
    return partial + (list(work.iterdir()) if work.exists() else [])


@pytest.mark.parametrize("mode", ["copy", "move"])
@pytest.mark.parametrize("crash_before", STEP_NAMES)
def test_a_crash_before_any_step_resumes_there_and_ends_like_an_uninterrupted_run(
    layout: Layout, services: Services, memory_store: RuntimeStore, mode: str, crash_before: str
) -> None:
    expected_library, expected_downloads = reference(layout, services, mode)
    layout.payload("Pack", PAYLOAD)
    torrent = status(new_id(), "Pack", layout.downloads)
    settings = layout.settings(transfer_mode=mode, **SETTINGS)

    crashing = Events(crash_before=crash_before)
    with pytest.raises(SimulatedCrash):
        services(settings, memory_store, publish=crashing).submit(torrent).result(timeout=10)

    events = Events()
    outcome = run(services(settings, memory_store, publish=events), torrent)
    index = STEP_NAMES.index(crash_before)
    assert outcome.status is JobStatus.MOVED, outcome.error
    assert events.steps() == list(STEP_NAMES[index:])
    assert outcome.resumed_from == (crash_before if index else None)
    assert tree(layout.library) == expected_library
    assert tree(layout.downloads) == expected_downloads
    assert leftovers(layout.library) == []
    history = memory_store.job_history(torrent.id)
    assert [(e.event, e.attempt) for e in history] == [
        (JobEvent.STARTED, 1),
        (JobEvent.STARTED, 2),
        (JobEvent.COMPLETED, 2),
    ]


def _crash_on_second(real: Callable[..., object], partial: bool) -> Callable[..., object]:
    calls = {"n": 0}

    def wrapper(origin: Path, target: Path, *args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            if partial:  # die half-way through writing the copy
                Path(target).with_name(f".{Path(target).name}{transfer_module.PARTIAL_SUFFIX}").write_bytes(b"half")
            raise SimulatedCrash("died mid-transfer")
        return real(origin, target, *args)

    return wrapper


@pytest.mark.parametrize(
    ("mode", "patched", "partial"),
    [
        ("copy", "copy_file", True),
        ("move", "place", False),
        ("hardlink", "place", False),
    ],
)
def test_a_crash_in_the_middle_of_the_transfer_resumes_without_redoing_or_losing_files(
    layout: Layout,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    patched: str,
    partial: bool,
) -> None:
    expected_library, expected_downloads = reference(layout, services, mode)
    layout.payload("Pack", PAYLOAD)
    torrent = status(new_id(), "Pack", layout.downloads)
    settings = layout.settings(transfer_mode=mode, **SETTINGS)
    module = transfer_module if patched == "copy_file" else steps_module
    real = getattr(module, patched)
    with monkeypatch.context() as patch:
        patch.setattr(module, patched, _crash_on_second(real, partial))
        with pytest.raises(SimulatedCrash):
            services(settings).submit(torrent).result(timeout=10)
    if partial:
        assert leftovers(layout.library)  # the crash left a partial file
    events = Events()
    outcome = run(services(settings, publish=events), torrent)
    assert outcome.resumed_from == "transfer"
    assert events.steps()[0] == "transfer"
    assert tree(layout.library) == expected_library
    assert tree(layout.downloads) == expected_downloads
    assert leftovers(layout.library) == []


def test_a_finished_job_is_not_redone(layout: Layout, services: Services, memory_store: RuntimeStore) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    first = run(services(layout.settings(), memory_store), torrent)
    (layout.library / "Show" / "a.mkv").unlink()  # were it redone, the file would come back
    events = Events()
    again = run(services(layout.settings(), memory_store, publish=events), torrent)
    assert again.already_done and again.steps_run == ()
    assert again.library_path == first.library_path
    assert events.kinds() == ["fsops_completed"]  # no start, no step: the library path is reported again
    assert not (layout.library / "Show" / "a.mkv").exists()
    assert [e.event for e in memory_store.job_history(torrent.id)] == [JobEvent.STARTED, JobEvent.COMPLETED]


def test_a_finished_job_whose_completion_never_reached_the_store_is_recorded_on_the_next_run(
    layout: Layout,
    services: Services,
    faulty: tuple[RuntimeStore, FaultyStore],
) -> None:
    store, plugin = faulty
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    service = services(layout.settings(), store)
    plugin.fail_next = 1_000
    assert run(service, torrent).status is JobStatus.MOVED
    assert [t.event for t in service.close(deadline=0.05)] == [JobEvent.STARTED, JobEvent.COMPLETED]
    plugin.fail_next = 0
    again = run(services(layout.settings(), store), torrent)
    assert again.already_done
    job = store.get_job(torrent.id)
    assert job is not None and job.status is JobStatus.MOVED and job.destination == str(layout.library / "Show")
    assert job.transfer_mode is TransferMode.COPY


def _well_formed_but(**changes: object) -> dict[str, object]:
    """A metadata document as FsOps writes one, with ``changes`` laid over its fields."""
    torrent_id = new_id()
    request = JobRequest(torrent_id=torrent_id, name="Show", source=Path("/nowhere/Show"))
    return {**JobMeta(torrent_id=torrent_id, fingerprint="f", request=request).to_json(), **changes}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{ not json", "corrupt"),
        (b"\xff\xfe\x00", "corrupt"),
        (json.dumps({"format": "something.else"}).encode(), "corrupt"),
        (json.dumps({"format": "revaer.fsops.meta", "version": 99}).encode(), "corrupt"),
        (json.dumps(_well_formed_but(runs="3")).encode(), "corrupt"),  # a field of another type
        (json.dumps(_well_formed_but(request={"name": "Show"})).encode(), "corrupt"),  # a request cut short
        (None, "foreign"),
    ],
)
def test_corrupt_or_foreign_metadata_is_moved_aside_and_the_job_restarts(
    layout: Layout, services: Services, caplog: pytest.LogCaptureFixture, content: bytes | None, reason: str
) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    meta_dir = layout.journal
    meta_dir.mkdir(parents=True)
    path = meta_dir / f"{torrent.id}.meta.json"
    if content is None:  # another torrent's finished document under this torrent's name
        other = status(new_id(), "Show", layout.downloads)
        run(services(layout.settings()), other)
        shutil.rmtree(layout.library / "Show")
        shutil.copy(meta_dir / f"{other.id}.meta.json", path)
    else:
        path.write_bytes(content)
    events = Events()
    with caplog.at_level(logging.WARNING, logger="revaer_core.fsops.meta"):
        outcome = run(services(layout.settings(), publish=events), torrent)
    assert outcome.status is JobStatus.MOVED and not outcome.already_done
    assert events.steps() == list(STEP_NAMES)
    assert tree(layout.library / "Show") == {"a.mkv": b"a"}
    aside = list(meta_dir.glob(f"{torrent.id}.meta.json.{reason}-*"))
    assert len(aside) == 1
    if content is not None:
        assert aside[0].read_bytes() == content
    assert any(str(torrent.id) in r.getMessage() and reason in r.getMessage() for r in caplog.records)


def test_metadata_of_a_changed_policy_is_stale_and_the_job_restarts(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    with pytest.raises(SimulatedCrash):
        services(layout.settings(), publish=Events(crash_before="transfer")).submit(torrent).result(timeout=10)
    events = Events()
    outcome = run(services(layout.settings(chmod_file="0600"), publish=events), torrent)
    assert outcome.resumed_from is None and events.steps() == list(STEP_NAMES)
    assert len(list((layout.journal).glob(f"{torrent.id}.meta.json.stale-*"))) == 1


def test_metadata_is_written_atomically_with_every_step(layout: Layout, services: Services) -> None:
    layout.payload("Show", {"a.mkv": b"a"})
    torrent = status(new_id(), "Show", layout.downloads)
    with pytest.raises(SimulatedCrash):
        services(layout.settings(), publish=Events(crash_before="cleanup")).submit(torrent).result(timeout=10)
    meta_dir = layout.journal
    document = json.loads((meta_dir / f"{torrent.id}.meta.json").read_text())
    assert document["status"] == "running"
    assert [s for s in STEP_NAMES if document["steps"].get(s, {}).get("status") == "done"] == list(
        STEP_NAMES[: STEP_NAMES.index("cleanup")]
    )
    assert [p.name for p in meta_dir.iterdir() if p.name.endswith(".tmp")] == []
