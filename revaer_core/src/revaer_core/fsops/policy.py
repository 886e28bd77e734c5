"""The FsOps policy: the ``[fsops]`` settings checked and turned into what the steps use."""

from __future__ import annotations

import grp
import hashlib
import json
import pwd
from pathlib import Path

import attrs

from revaer_core.errors import ConfigError
from revaer_core.fsops.errors import FsOpsError
from revaer_core.fsops.paths import META_DIR, is_within
from revaer_core.fsops.rules import Rules
from revaer_core.jobs import TransferMode
from revaer_core.settings import FsOpsSettings, octal_mode


def _user_id(name: str | None, key: str) -> int | None:
    if name is None:
        return None
    if name.strip().isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ConfigError(key, f"no such user {name!r}") from None


def _group_id(name: str | None, key: str) -> int | None:
    if name is None:
        return None
    if name.strip().isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(key, f"no such group {name!r}") from None


def journal_dir_of(data_dir: Path) -> Path:
    """``<data_dir>/fsops``: the job journal's folder, which no torrent can write into.

    A torrent writes anything it likes under its save path; the library root
    may lie there by mistake (start refuses it, but FsOps does not trust that
    alone), the data dir never holds a torrent's files.
    """
    return data_dir / "fsops"


@attrs.frozen
class FsOpsPolicy:
    """Checked FsOps settings; build with :meth:`from_settings`, which names the key of any problem."""

    settings: FsOpsSettings
    library_root: Path
    allowed_roots: tuple[Path, ...]
    file_mode: int | None  #: mode for transferred files (``chmod_file``, else from ``umask``); None: as created
    dir_mode: int | None  #: mode for directories FsOps creates
    uid: int | None
    gid: int | None
    rules: Rules
    #: where each job's journal (``<torrent id>.meta.json``) is kept: under the data dir, where no torrent writes
    journal_dir: Path

    @classmethod
    def from_settings(cls, settings: FsOpsSettings, *, journal_dir: Path) -> FsOpsPolicy:
        """The policy for ``settings``; :class:`ConfigError` naming ``fsops.<key>`` when unusable.

        :param journal_dir: the job journal's folder, normally :func:`journal_dir_of` the data dir.
        """
        root = settings.library_root
        if root is None:
            raise ConfigError("fsops.library_root", "required to run FsOps")
        for key, path in [("library_root", root), *(("allowed_roots", r) for r in settings.allowed_roots)]:
            if not path.is_absolute():
                raise ConfigError(f"fsops.{key}", f"must be an absolute path, got {str(path)!r}")
        allowed = settings.allowed_roots or (root,)
        if not any(is_within(root, a) for a in allowed):
            raise ConfigError("fsops.library_root", f"{root} is not under any of fsops.allowed_roots")
        umask = octal_mode("fsops.umask", settings.umask, maximum=0o777)
        file_mode = octal_mode("fsops.chmod_file", settings.chmod_file)
        dir_mode = octal_mode("fsops.chmod_dir", settings.chmod_dir)
        if umask is not None:
            file_mode = 0o666 & ~umask if file_mode is None else file_mode
            dir_mode = 0o777 & ~umask if dir_mode is None else dir_mode
        try:
            rules = Rules.from_settings(settings)
        except FsOpsError as exc:
            key, _, problem = str(exc).partition(": ")
            raise ConfigError(key, problem) from None
        return cls(
            settings=settings,
            library_root=root,
            allowed_roots=tuple(allowed),
            file_mode=file_mode,
            dir_mode=dir_mode,
            uid=_user_id(settings.owner, "fsops.owner"),
            gid=_group_id(settings.group, "fsops.group"),
            rules=rules,
            journal_dir=journal_dir,
        )

    @property
    def transfer_mode(self) -> TransferMode:
        return self.settings.transfer_mode

    @property
    def work_root(self) -> Path:
        """``<library_root>/.revaer/work``: extraction happens on the library's filesystem, so a move is a rename."""
        return self.library_root / META_DIR / "work"

    @property
    def legacy_journal_dir(self) -> Path:
        """``<library_root>/.revaer``: where earlier versions kept the journal (not trusted, see ``service.py``)."""
        return self.library_root / META_DIR

    def fingerprint(self) -> str:
        """A digest of everything that shapes a job's result: a resumed job must run under the same policy."""
        s = self.settings
        shape = {
            "library_root": str(s.library_root),
            "transfer_mode": s.transfer_mode.value,
            "extract": s.extract,
            "flatten": s.flatten,
            "include": list(s.include),
            "exclude": list(s.exclude),
            "preset": s.preset.value,
            "cleanup": list(s.cleanup),
            "cleanup_keep": list(s.cleanup_keep),
            "file_mode": self.file_mode,
            "dir_mode": self.dir_mode,
            "uid": self.uid,
            "gid": self.gid,
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
