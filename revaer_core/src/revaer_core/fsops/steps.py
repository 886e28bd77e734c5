"""The twelve FsOps steps, in order, each a function of the job's context.

A step reads what earlier steps found from ``ctx.state`` (persisted in the
metadata file, so it is there after a crash too), does its work, and records
what later steps need. A step must be safe to run again after it was
interrupted: the pipeline marks it done only after it returned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from revaer_core.fsops.archives import extract_archive
from revaer_core.fsops.errors import FsOpsError, UnsafePath, describe_os_error
from revaer_core.fsops.meta import JobMeta, fsync_dir
from revaer_core.fsops.paths import (
    archive_stem,
    archive_suffix,
    ensure_within,
    is_within,
    join_inside,
    safe_component,
    safe_relative,
)
from revaer_core.fsops.policy import FsOpsPolicy
from revaer_core.fsops.request import JobRequest
from revaer_core.fsops.rules import Rules
from revaer_core.fsops.transfer import choose_target, place
from revaer_core.jobs import TransferMode

log = logging.getLogger(__name__)


class Skip(Exception):
    """Nothing to put into the library (every file excluded, say): the job ends ``skipped``."""


@attrs.define
class JobContext:
    """One run of one job: its policy, request, metadata document and a way to save it mid-step."""

    policy: FsOpsPolicy
    request: JobRequest
    meta: JobMeta
    checkpoint: Callable[[], None]  #: persist ``meta`` now (for steps that journal before acting)
    _rules: Rules | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self.meta.state

    @property
    def rules(self) -> Rules:
        """The compiled rules (compiled again on a resumed run; the fingerprint pins the settings)."""
        if self._rules is None:
            self._rules = Rules.from_settings(self.policy.settings)
        return self._rules

    @property
    def destination(self) -> Path:
        return Path(self.state["destination"])

    @property
    def work_dir(self) -> Path:
        return self.policy.work_root / str(self.request.torrent_id)


# -- 1-4: policy, allow-list, directories, rules ---------------------------------------------


def validate_policy(ctx: JobContext) -> None:
    """Check what can change after startup: the library root is a directory inside the allowed roots."""
    root = ctx.policy.library_root
    if os.path.lexists(root) and not root.is_dir():
        raise FsOpsError(f"library root {root} exists and is not a directory")
    if not any(is_within(root, allowed) for allowed in ctx.policy.allowed_roots):
        raise UnsafePath(f"library root {root} resolves to {os.path.realpath(root)}, outside fsops.allowed_roots")


def allow_list(ctx: JobContext) -> None:
    """Derive the destination from the (untrusted) torrent name and check it stays where it may."""
    name = safe_component(ctx.request.name, "torrent name")
    top = safe_component(archive_stem(name), "torrent name") if ctx.policy.settings.extract else name
    root = ctx.policy.library_root
    destination = root / top
    if not any(is_within(destination, allowed) for allowed in ctx.policy.allowed_roots):
        raise UnsafePath(
            f"destination {destination} resolves to {os.path.realpath(destination)}, outside fsops.allowed_roots"
        )
    ensure_within(destination, root, "destination")
    ctx.state["top"] = top
    ctx.state["destination"] = str(destination)


def prepare_directories(ctx: JobContext) -> None:
    """Create the library root, FsOps' work folder in it and the journal's folder; fail early when not writable."""
    for path in (ctx.policy.library_root, ctx.policy.work_root, ctx.policy.journal_dir):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise describe_os_error(exc, path, "creating directory") from None
    if not os.access(ctx.policy.library_root, os.W_OK | os.X_OK):
        raise FsOpsError(f"permission denied: cannot write to library root {ctx.policy.library_root}")


def compile_rules(ctx: JobContext) -> None:
    """Compile the globs (preset included) and note them in the metadata, for the audit."""
    rules = ctx.rules
    ctx.state["rules"] = {
        "include": [g.text for g in rules.include],
        "exclude": [g.text for g in rules.exclude],
        "cleanup": [g.text for g in rules.cleanup],
        "cleanup_keep": [g.text for g in rules.cleanup_keep],
    }


# -- 5-8: source, work dir, extraction, flattening ----------------------------------------------


def _walk(root: Path) -> Iterator[PurePosixPath]:
    """Regular files under ``root``, sorted; refuses escaping symlinks and special files."""
    stack = [PurePosixPath()]
    while stack:
        rel = stack.pop()
        folder = root.joinpath(*rel.parts)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise describe_os_error(exc, folder, "listing") from None
        for entry in entries:
            child = rel / entry.name
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                stack.append(child)
            elif stat.S_ISREG(mode):
                yield child
            elif stat.S_ISLNK(mode):
                if not is_within(Path(entry.path), root):
                    raise UnsafePath(
                        f"symlink {entry.path} points outside the torrent's folder "
                        f"(to {os.path.realpath(entry.path)}); refused"
                    )
                log.info("FsOps skips symlink %s: its target inside the torrent is transferred itself", entry.path)
            else:
                raise UnsafePath(f"{entry.path} is a device, FIFO or socket; refused")


def _selected(ctx: JobContext, kind: str) -> set[PurePosixPath] | None:
    """The torrent's selected files relative to its payload, or ``None`` when all are wanted."""
    if ctx.request.files is None:
        return None
    name = ctx.request.name
    selected: set[PurePosixPath] = set()
    for path in ctx.request.files:
        rel = safe_relative(path, "file path in torrent")
        if kind == "file" and rel == PurePosixPath(name):
            selected.add(rel)
        elif kind == "dir" and len(rel.parts) > 1 and rel.parts[0] == name:
            selected.add(PurePosixPath(*rel.parts[1:]))
        else:
            raise UnsafePath(f"file path in torrent {path!r} lies outside the torrent's folder {name!r}")
    return selected


def locate_source(ctx: JobContext) -> None:
    """Find the payload and list the files to transfer (rules and the torrent's selection applied)."""
    source = ctx.request.source
    if not source.is_absolute():
        raise FsOpsError(f"torrent {ctx.request.torrent_id} has no download dir; nothing to locate")
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        raise FsOpsError(f"source {source} not found") from None
    except OSError as exc:
        raise describe_os_error(exc, source, "reading") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"source {source} is a symlink; refused")
    if stat.S_ISREG(st.st_mode):
        kind, found = "file", [PurePosixPath(ctx.request.name)]
    elif stat.S_ISDIR(st.st_mode):
        kind, found = "dir", sorted(_walk(source))
    else:
        raise UnsafePath(f"source {source} is a device, FIFO or socket; refused")
    selected = _selected(ctx, kind)
    entries = [rel for rel in found if (selected is None or rel in selected) and ctx.rules.selects(rel)]
    ctx.state.update(source_kind=kind, source_dev=st.st_dev, entries=[str(e) for e in entries])
    if not entries:
        raise Skip(f"nothing to transfer from {source}: every file is excluded by the fsops rules or not selected")


def prepare_work_dir(ctx: JobContext) -> None:
    """``<library_root>/.revaer/work/<torrent id>``: extraction happens here, on the library's filesystem."""
    try:
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise describe_os_error(exc, ctx.work_dir, "creating directory") from None


def extract(ctx: JobContext) -> None:
    """Unpack archives into the work dir and write the transfer plan (destination, origin, kind).

    An extracted archive is replaced by its contents in the plan; extracted
    files pass the same rules as the torrent's own.
    """
    out = ctx.work_dir / "extracted"
    shutil.rmtree(out, ignore_errors=True)  # an interrupted extraction starts over
    top, kind, source = ctx.state["top"], ctx.state["source_kind"], ctx.request.source
    plan: list[list[str]] = []
    for n, text in enumerate(ctx.state["entries"], start=1):
        rel = PurePosixPath(text)
        origin = source if kind == "file" else source.joinpath(*rel.parts)
        if not (ctx.policy.settings.extract and archive_suffix(rel.name)):
            plan.append([str(PurePosixPath(top) / rel) if kind == "dir" else top, str(origin), "source"])
            continue
        into = out / str(n)
        parent = rel.parent if kind == "dir" else PurePosixPath()
        for member in extract_archive(origin, into):
            if ctx.rules.selects(parent / member):
                plan.append([str(PurePosixPath(top) / parent / member), str(into.joinpath(*member.parts)), "work"])
    if not plan:
        raise Skip(f"nothing to transfer from {source}: the archives hold only excluded files")
    ctx.state["plan"] = plan


def flatten(ctx: JobContext) -> None:
    """``Show/Show/…`` becomes ``Show/…`` when the torrent's folder holds one directory and nothing else."""
    if not ctx.policy.settings.flatten:
        return
    dests = [PurePosixPath(d) for d, _, _ in ctx.state["plan"]]
    if not all(len(d.parts) >= 3 for d in dests) or len({d.parts[1] for d in dests}) != 1:
        return
    ctx.state["flattened"] = dests[0].parts[1]
    ctx.state["plan"] = [
        [str(PurePosixPath(d.parts[0], *d.parts[2:])), origin, kind]
        for d, (_, origin, kind) in zip(dests, ctx.state["plan"], strict=True)
    ]


# -- 9-12: transfer, permissions, cleanup, finalise ----------------------------------------------


def _resolve_targets(ctx: JobContext) -> None:
    """Choose every target (collisions numbered) and the directories to create; journalled before any write."""
    root, destination = ctx.policy.library_root, ctx.destination
    if ctx.policy.transfer_mode is TransferMode.HARDLINK:
        library_dev = os.stat(root).st_dev
        if ctx.state["source_dev"] != library_dev:
            raise FsOpsError(
                f"hardlink mode needs the download and the library on one filesystem: {ctx.request.source} "
                f"and {root} are on different filesystems; use transfer_mode 'copy' or 'move'"
            )
    taken: set[Path] = set()
    created: set[str] = set()
    targets: list[list[str]] = []
    for dest, origin, kind in ctx.state["plan"]:
        wanted = ensure_within(join_inside(root, dest, "destination"), destination, "destination")
        for parent in wanted.parents:
            if parent == root:
                break
            if not os.path.lexists(parent):
                created.add(str(parent))
            elif not parent.is_dir():
                raise FsOpsError(f"{parent} exists and is not a directory; not overwritten")
        target = choose_target(wanted, Path(origin), taken)
        taken.add(target)
        targets.append([origin, str(target), kind, dest])
    ctx.state["targets"] = targets
    ctx.state["created_dirs"] = sorted(created)
    ctx.checkpoint()


def transfer(ctx: JobContext) -> None:
    """Copy, move or hardlink every planned file (extracted files are always moved out of the work dir)."""
    if "targets" not in ctx.state:
        _resolve_targets(ctx)
    root = ctx.policy.library_root
    for origin, target_text, kind, _ in ctx.state["targets"]:
        target = Path(target_text)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise describe_os_error(exc, target.parent, "creating directory") from None
        ensure_within(target, root, "destination")  # again, now that the directories exist
        place(Path(origin), target, ctx.policy.transfer_mode if kind == "source" else TransferMode.MOVE)


def _may_chown(uid: int | None, gid: int | None) -> bool:
    if os.geteuid() == 0:
        return True
    return uid in (None, os.geteuid()) and (gid is None or gid == os.getegid() or gid in os.getgroups())


def set_permissions(ctx: JobContext) -> None:
    """chmod files and created directories; chown only where the process may.

    In hardlink mode the library file *is* the download's file: its mode and
    owner change for both names.
    """
    policy = ctx.policy
    files = [Path(t) for _, t, _, _ in ctx.state["targets"]]
    dirs = [Path(d) for d in ctx.state["created_dirs"]]
    for paths, mode in ((files, policy.file_mode), (dirs, policy.dir_mode)):
        if mode is None:
            continue
        for path in paths:
            try:
                os.chmod(path, mode, follow_symlinks=False)
            except OSError as exc:
                raise describe_os_error(exc, path, f"setting mode {mode:o} on") from None
    if policy.uid is None and policy.gid is None:
        return
    if not _may_chown(policy.uid, policy.gid):
        log.warning(
            "FsOps of torrent %s: not permitted to set owner %s / group %s; left as the process's",
            ctx.request.torrent_id,
            policy.settings.owner,
            policy.settings.group,
        )
        return
    for path in [*dirs, *files]:
        try:
            os.chown(path, -1 if policy.uid is None else policy.uid, -1 if policy.gid is None else policy.gid)
        except OSError as exc:
            raise describe_os_error(exc, path, "setting owner of") from None


def cleanup(ctx: JobContext) -> None:
    """Drop library files matching ``cleanup`` (unless ``cleanup_keep``), empty dirs, the work dir, and,
    after a move, the empty folders left in the download."""
    dropped: list[str] = []
    for _, target_text, _, dest in ctx.state["targets"]:
        parts = PurePosixPath(dest).parts
        rel = PurePosixPath(*parts[1:]) if len(parts) > 1 else PurePosixPath(parts[0])
        target = Path(target_text)
        if ctx.rules.drops(rel) and os.path.lexists(target):
            try:
                target.unlink()
            except OSError as exc:
                raise describe_os_error(exc, target, "removing") from None
            dropped.append(target_text)
    ctx.state["dropped"] = sorted(set(ctx.state.get("dropped", [])) | set(dropped))
    for folder in sorted(ctx.state["created_dirs"], key=lambda d: d.count("/"), reverse=True):
        _remove_if_empty(Path(folder))
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    if ctx.policy.transfer_mode is TransferMode.MOVE and ctx.state["source_kind"] == "dir":
        source = ctx.request.source
        for folder, _, _ in sorted(os.walk(source), key=lambda w: w[0].count(os.sep), reverse=True):
            _remove_if_empty(Path(folder))


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        folder.rmdir()


def finalise(ctx: JobContext) -> None:
    """Check the library holds every kept file, make the renames durable, and name the library path."""
    dropped = set(ctx.state.get("dropped", []))
    targets = [t for _, t, _, _ in ctx.state["targets"] if t not in dropped]
    missing = [t for t in targets if not os.path.lexists(t)]
    if missing:
        raise FsOpsError(f"{missing[0]} is missing from the library after transfer ({len(missing)} file(s) missing)")
    for folder in sorted({str(Path(t).parent) for t in targets} | {str(ctx.policy.library_root)}):
        fsync_dir(Path(folder))
    single = ctx.state["targets"]
    if len(single) == 1 and single[0][3] == ctx.state["top"]:
        ctx.state["library_path"] = single[0][1]  # a single-file torrent: the file itself (maybe renumbered)
    else:
        ctx.state["library_path"] = str(ctx.destination)


Step = Callable[[JobContext], None]

#: The pipeline, in order. A step's name is what FsOpsProgress events and the metadata file carry.
STEPS: tuple[tuple[str, Step], ...] = (
    ("validate_policy", validate_policy),
    ("allow_list", allow_list),
    ("prepare_directories", prepare_directories),
    ("compile_rules", compile_rules),
    ("locate_source", locate_source),
    ("prepare_work_dir", prepare_work_dir),
    ("extract", extract),
    ("flatten", flatten),
    ("transfer", transfer),
    ("set_permissions", set_permissions),
    ("cleanup", cleanup),
    ("finalise", finalise),
)

STEP_NAMES: tuple[str, ...] = tuple(name for name, _ in STEPS)
