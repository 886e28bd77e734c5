"""Include, exclude and cleanup globs, compiled once per job.

A glob matches a ``/``-separated path relative to the torrent, ignoring case:

- without ``/`` it matches a name at any depth, and a directory's name matches
  everything inside it (``sample`` drops ``Movie/Sample/clip.mkv``);
- with ``/`` it matches from the top, and again a match on a directory covers
  its contents (``Movie/Extras`` drops ``Movie/Extras/a.mkv``);
- ``*`` stays inside one name, ``**`` crosses directories, ``?`` is one
  character, ``[abc]`` / ``[!abc]`` are character classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

import attrs

from revaer_core.fsops.errors import FsOpsError
from revaer_core.settings import FsOpsPreset, FsOpsSettings

#: Exclude globs each preset adds.
PRESETS: dict[FsOpsPreset, tuple[str, ...]] = {
    FsOpsPreset.NONE: (),
    FsOpsPreset.SKIP_EXTRAS: (
        "sample",
        "samples",
        "sample.*",
        "*[-._ ]sample.*",
        "extra",
        "extras",
        "proof",
        "proofs",
        "proof.*",
        "*[-._ ]proof.*",
        "screens",
        "screenshots",
    ),
}


def _translate(glob: str, key: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = glob.find("]", i + 2 if glob.startswith("[!", i) or glob.startswith("[]", i) else i + 1)
            if end < 0:
                raise FsOpsError(f"{key}: glob {glob!r} has '[' without a closing ']'")
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@attrs.frozen
class Glob:
    """One compiled glob and where it came from (for messages)."""

    text: str
    anchored: bool  #: contains ``/``: matched against the whole path from the top
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, text: str, key: str) -> Glob:
        cleaned = text.strip().strip("/") if "/" in text.strip() else text.strip()
        if not cleaned or "\x00" in cleaned:
            raise FsOpsError(f"{key}: glob {text!r} is empty or holds a NUL byte")
        anchored = "/" in text.strip()
        try:
            regex = re.compile(_translate(cleaned, key), re.IGNORECASE | re.DOTALL)
        except re.error as exc:
            raise FsOpsError(f"{key}: glob {text!r} does not compile: {exc}") from None
        return cls(text=text, anchored=anchored, regex=regex)

    def matches(self, path: PurePosixPath) -> bool:
        """Whether the glob matches ``path`` or one of the directories holding it."""
        parts = path.parts
        if not self.anchored:
            return any(self.regex.fullmatch(part) for part in parts)
        return any(self.regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def _compile(globs: Iterable[str], key: str) -> tuple[Glob, ...]:
    return tuple(Glob.compile(text, f"{key}[{i}]") for i, text in enumerate(globs))


@attrs.frozen
class Rules:
    """Which files go into the library, and which the cleanup step takes out again."""

    include: tuple[Glob, ...] = ()
    exclude: tuple[Glob, ...] = ()
    cleanup: tuple[Glob, ...] = ()
    cleanup_keep: tuple[Glob, ...] = ()

    @classmethod
    def from_settings(cls, settings: FsOpsSettings) -> Rules:
        """Compile every glob; a bad one is an :class:`FsOpsError` naming ``fsops.<key>[i]``."""
        return cls(
            include=_compile(settings.include, "fsops.include"),
            exclude=_compile(settings.exclude, "fsops.exclude") + _compile(PRESETS[settings.preset], "preset"),
            cleanup=_compile(settings.cleanup, "fsops.cleanup"),
            cleanup_keep=_compile(settings.cleanup_keep, "fsops.cleanup_keep"),
        )

    def selects(self, path: PurePosixPath) -> bool:
        """Whether a file at ``path`` (relative to the torrent) is transferred."""
        if self.include and not any(g.matches(path) for g in self.include):
            return False
        return not any(g.matches(path) for g in self.exclude)

    def drops(self, path: PurePosixPath) -> bool:
        """Whether the cleanup step removes the library copy of ``path``."""
        return any(g.matches(path) for g in self.cleanup) and not any(g.matches(path) for g in self.cleanup_keep)
