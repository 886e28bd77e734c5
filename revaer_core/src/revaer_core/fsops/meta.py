"""``<data_dir>/fsops/<torrent_id>.meta.json``, the job journal: each step's outcome, written atomically.

The file is what makes a job resumable: a step is marked done only once its
effects are on disk, and every write goes to a temp file that is fsynced and
renamed over the old one (then the directory is fsynced), so a crash leaves
either the previous document or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs

from revaer_core.fsops.request import JobRequest
from revaer_core.serialize import from_json, to_json

log = logging.getLogger(__name__)

FORMAT = "revaer.fsops.meta"
VERSION = 1


class MetaStatus(enum.StrEnum):
    """Where the job stood when the file was last written."""

    RUNNING = "running"  #: a run started and has not finished (or the process died)
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        """A finished job is not redone."""
        return self in (MetaStatus.COMPLETED, MetaStatus.SKIPPED)


class BadMeta(ValueError):
    """The file is not a metadata document for this job."""


@attrs.define
class JobMeta:
    """The document: which steps are done, what they found, and how the job ended."""

    torrent_id: UUID
    fingerprint: str  #: request and policy digest: a file for other inputs is stale
    request: JobRequest
    status: MetaStatus = MetaStatus.RUNNING
    runs: int = 0  #: runs started on this document (a resume is a run)
    steps: dict[str, dict[str, Any]] = attrs.field(factory=dict)  #: step -> {"status", "at", "detail"?}
    state: dict[str, Any] = attrs.field(factory=dict)  #: what steps found, for the steps after them
    destination: str | None = None
    error: str | None = None

    def done(self, step: str) -> bool:
        return self.steps.get(step, {}).get("status") == "done"

    def mark(self, step: str, status: str, detail: str | None = None) -> None:
        entry: dict[str, Any] = {"status": status, "at": datetime.now(UTC).isoformat()}
        if detail is not None:
            entry["detail"] = detail
        self.steps[step] = entry

    def to_json(self) -> dict[str, Any]:
        """The document: its format and version, then every field as :func:`revaer_core.to_json` writes it."""
        document: dict[str, Any] = {"format": FORMAT, "version": VERSION, **to_json(self)}
        return document

    @classmethod
    def from_json(cls, data: object) -> JobMeta:
        """The document in ``data``; :class:`BadMeta` if it is not one this version wrote."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise BadMeta("not an FsOps metadata document")
        if data.get("version") != VERSION:
            raise BadMeta(f"metadata version {data.get('version')!r}, this FsOps reads {VERSION}")
        if not isinstance(data.get("steps"), dict) or not isinstance(data.get("state"), dict):
            raise BadMeta("steps and state must be objects")
        try:
            return from_json(cls, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadMeta(f"malformed metadata: {exc!r}") from None


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class MetaFile:
    """The metadata file of one torrent's job."""

    def __init__(self, journal_dir: Path, torrent_id: UUID) -> None:
        self.torrent_id = torrent_id
        self.path = journal_dir / f"{torrent_id}.meta.json"

    def load(self, fingerprint: str) -> JobMeta | None:
        """The job's document, or ``None`` to start afresh.

        A corrupt or foreign file, or one written for other inputs (another
        source, a changed policy), is moved aside with a warning first.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            meta = JobMeta.from_json(json.loads(raw))
        except (BadMeta, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.move_aside("corrupt", str(exc))
            return None
        if meta.torrent_id != self.torrent_id:
            self.move_aside("foreign", f"written for torrent {meta.torrent_id}")
            return None
        if meta.fingerprint != fingerprint:
            self.move_aside("stale", "written for another source or policy")
            return None
        return meta

    def save(self, meta: JobMeta) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(meta.to_json(), indent=1, sort_keys=True).encode())

    def move_aside(self, reason: str, detail: str, consequence: str = "the job starts over") -> Path:
        """Rename the file to ``<name>.<reason>-<utc time>[-n]`` so nobody loses it; returns the new path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.{reason}-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.{reason}-{stamp}-{n}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.path, target)
        log.warning(
            "FsOps journal of torrent %s is %s (%s): moved aside to %s; %s",
            self.torrent_id,
            reason,
            detail,
            target,
            consequence,
        )
        return target
