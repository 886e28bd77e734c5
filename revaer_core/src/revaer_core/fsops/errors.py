"""Why an FsOps job stopped: one line naming the path, for the job's ``last_error``."""

from __future__ import annotations

import errno
from pathlib import Path


class FsOpsError(Exception):
    """A job cannot go on; the message says what and where, and is stored as the job's error."""


class UnsafePath(FsOpsError):
    """A name or path from the torrent (or an archive in it) would leave its folder; refused."""


def describe_os_error(exc: OSError, path: Path | str, doing: str) -> FsOpsError:
    """An :class:`FsOpsError` for ``exc`` that names ``path`` (disk full and permissions spelt out).

    :param doing: what FsOps was doing, as a verb phrase ("copying", "creating directory").
    """
    where = exc.filename if isinstance(exc.filename, str) and exc.filename else str(path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return FsOpsError(f"disk full while {doing} {where}: {exc.strerror}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FsOpsError(f"permission denied while {doing} {where}: {exc.strerror}")
    return FsOpsError(f"{doing} {where} failed: {exc.strerror or exc}")
