"""What FsOps is asked to do for one torrent: its id, name and where its payload lies."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import attrs

from revaer_core.status import TorrentStatus


@attrs.frozen
class JobRequest:
    """A torrent's payload to put into the library.

    ``name`` and ``files`` come from the torrent and are untrusted: the pipeline
    checks them before it uses them for any path.
    """

    torrent_id: UUID
    name: str
    source: Path  #: the payload: ``<download dir>/<name>``, a file or a folder
    files: tuple[str, ...] | None = None  #: selected files, relative to the download dir; None means all

    @classmethod
    def from_status(cls, status: TorrentStatus) -> JobRequest:
        """The request for a completed torrent, as the orchestrator holds it.

        A missing name or download dir is kept as empty: the pipeline refuses
        it, so the job fails visibly instead of the hand-off raising.
        """
        name = status.name or ""
        files = None if status.files is None else tuple(f.path for f in status.files if f.selected)
        # Joined as text: an absolute or '..' name must not become a real path before it is checked.
        source = Path(status.download_dir.rstrip("/") + "/" + name) if status.download_dir else Path()
        return cls(torrent_id=status.id, name=name, source=source, files=files)

    @classmethod
    def from_source(cls, torrent_id: UUID, source: str) -> JobRequest:
        """A request rebuilt from a stored job's source path (no file selection known)."""
        path = Path(source)
        return cls(torrent_id=torrent_id, name=path.name, source=path)
