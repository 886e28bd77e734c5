"""Reading a torrent before any engine sees it: bencoded metainfo and magnet links.

Control operations check what an operator hands them (a .torrent upload, a
file in the watch folder, a magnet) here, in pure Python and with limits, so
hostile input is refused with a message naming what is wrong before it
reaches the engine or the store. The info-hash computed here is the one
the engine derives the torrent's id from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from revaer_core.engine import torrent_id_for
from revaer_core.errors import InvalidInput

#: Deepest nesting of lists and dictionaries accepted (real torrents need about 5).
MAX_DEPTH = 64
#: Most files a torrent may list.
MAX_FILES = 100_000

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_BASE32 = re.compile(r"[A-Za-z2-7]{32}")
_BTMH = re.compile(r"1220([0-9a-fA-F]{64})")


class BencodeError(ValueError):
    """The bytes are not bencoding; the message says where and why."""


@attrs.frozen
class TorrentFile:
    """One file of a torrent, in the engine's index order (padding files keep their index)."""

    index: int
    path: str  #: "/"-separated, the torrent's name first for a multi-file torrent
    size: int
    pad: bool = False  #: BEP 47 alignment padding: never on disk, never selectable


@attrs.frozen
class TorrentInfo:
    """What a source says about its torrent."""

    info_hash: str  #: hex, lower case: v1 where the torrent has one, else v2
    name: str | None
    files: tuple[TorrentFile, ...] | None  #: ``None`` for a magnet: unknown until its metadata arrives
    metainfo: bytes | None = None
    magnet: str | None = None

    @property
    def torrent_id(self) -> Any:
        return torrent_id_for(self.info_hash)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files or () if not f.pad)


# -- bencoding -------------------------------------------------------------------------


class _Decoder:
    """A bencode reader that remembers where the ``info`` dictionary starts and ends."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.info_span: tuple[int, int] | None = None

    def fail(self, problem: str) -> BencodeError:
        return BencodeError(f"{problem} at byte {self.pos}")

    def value(self, depth: int = 0, *, top: bool = False) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        if self.pos >= len(self.data):
            raise self.fail("data ends too early (is the file truncated?)")
        lead = self.data[self.pos : self.pos + 1]
        if lead == b"i":
            end = self.data.find(b"e", self.pos + 1)
            if end < 0:
                raise self.fail("an integer has no end (is the file truncated?)")
            text = self.data[self.pos + 1 : end]
            if not re.fullmatch(rb"-?(0|[1-9][0-9]*)", text) or text == b"-0":
                raise self.fail(f"{text[:20]!r} is not an integer")
            self.pos = end + 1
            return int(text)
        if lead == b"l":
            self.pos += 1
            items = []
            while self.more():
                items.append(self.value(depth + 1))
            self.pos += 1
            return items
        if lead == b"d":
            self.pos += 1
            result: dict[bytes, Any] = {}
            while self.more():
                key = self.string()
                start = self.pos
                result[key] = self.value(depth + 1)
                if top and key == b"info":
                    self.info_span = (start, self.pos)
            self.pos += 1
            return result
        if lead.isdigit():
            return self.string()
        raise self.fail(f"unexpected {lead!r}")

    def more(self) -> bool:
        """Whether a list or dictionary goes on (``False`` at its ``e``); data that just stops is truncated."""
        if self.pos >= len(self.data):
            raise self.fail("data ends too early (is the file truncated?)")
        return self.data[self.pos : self.pos + 1] != b"e"

    def string(self) -> bytes:
        colon = self.data.find(b":", self.pos, self.pos + 20)
        if colon < 0 or not self.data[self.pos : colon].isdigit():
            raise self.fail("expected a byte string")
        length = int(self.data[self.pos : colon])
        start, self.pos = colon + 1, colon + 1 + length
        if self.pos > len(self.data):
            raise self.fail("a string runs past the end of the data (is the file truncated?)")
        return self.data[start : self.pos]


def bdecode(data: bytes) -> Any:
    """The value bencoded in ``data``; raises :class:`BencodeError` on anything else."""
    decoder = _Decoder(data)
    value = decoder.value(top=True)
    if decoder.pos != len(data):
        raise decoder.fail("trailing bytes after the bencoded value")
    return value


# -- metainfo -------------------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if not isinstance(value, bytes):
        raise InvalidInput(f"not a valid torrent: {what} is not a string")
    return value.decode("utf-8", errors="replace")


def _size(value: Any, what: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise InvalidInput(f"not a valid torrent: {what} is not a non-negative integer")
    return value


def _v1_files(info: dict[bytes, Any], name: str) -> Iterator[tuple[str, int, bool]]:
    if b"files" not in info:
        yield name, _size(info.get(b"length"), "the file length"), False
        return
    entries = info[b"files"]
    if not isinstance(entries, list):
        raise InvalidInput("not a valid torrent: 'files' is not a list")
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get(b"path"), list) or not entry[b"path"]:
            raise InvalidInput(f"not a valid torrent: file {n} has no path")
        parts = [_text(p, f"a path part of file {n}") for p in entry[b"path"]]
        attr = entry.get(b"attr", b"")
        yield "/".join([name, *parts]), _size(entry.get(b"length"), f"the length of file {n}"), b"p" in attr


def _v2_files(tree: Any, prefix: str, depth: int = 0) -> Iterator[tuple[str, int, bool]]:
    if not isinstance(tree, dict) or depth > MAX_DEPTH:
        raise InvalidInput("not a valid torrent: its 'file tree' is malformed")
    for key, node in tree.items():
        if key == b"":
            if not isinstance(node, dict):
                raise InvalidInput("not a valid torrent: its 'file tree' is malformed")
            yield prefix, _size(node.get(b"length"), f"the length of {prefix!r}"), False
        else:
            part = _text(key, "a file tree name")
            yield from _v2_files(node, f"{prefix}/{part}" if prefix else part, depth + 1)


def read_metainfo(data: bytes) -> TorrentInfo:
    """What the bencoded metainfo ``data`` (a .torrent's contents) describes.

    :raises InvalidInput: ``data`` is not bencoding, or not a torrent, saying why.
    """
    try:
        decoder = _Decoder(data)
        document = decoder.value(top=True)
        if decoder.pos != len(data):
            raise decoder.fail("trailing bytes after the bencoded value")
    except BencodeError as exc:
        raise InvalidInput(f"not a valid torrent file: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get(b"info"), dict) or decoder.info_span is None:
        raise InvalidInput("not a valid torrent file: it has no 'info' dictionary")
    info: dict[bytes, Any] = document[b"info"]
    name = _text(info.get(b"name", b""), "the name") or None
    raw_info = data[decoder.info_span[0] : decoder.info_span[1]]
    has_v1 = b"pieces" in info
    if has_v1:
        if not isinstance(info[b"pieces"], bytes) or len(info[b"pieces"]) % 20:
            raise InvalidInput("not a valid torrent file: its piece hashes are malformed")
        info_hash = hashlib.sha1(raw_info).hexdigest()  # noqa: S324 - BitTorrent v1 identifies torrents by SHA-1
        listed = list(_v1_files(info, name or ""))
    elif info.get(b"meta version") == 2 and b"file tree" in info:
        info_hash = hashlib.sha256(raw_info).hexdigest()
        listed = list(_v2_files(info[b"file tree"], name or ""))
    else:
        raise InvalidInput("not a valid torrent file: it has neither piece hashes nor a v2 file tree")
    if not listed:
        raise InvalidInput("not a valid torrent file: it lists no files")
    if len(listed) > MAX_FILES:
        raise InvalidInput(f"torrent lists {len(listed)} files; the most accepted is {MAX_FILES}")
    files = tuple(TorrentFile(index=i, path=p, size=s, pad=pad) for i, (p, s, pad) in enumerate(listed))
    return TorrentInfo(info_hash=info_hash, name=name, files=files, metainfo=bytes(data))


def read_magnet(link: str) -> TorrentInfo:
    """What the magnet link ``link`` says: its info-hash (required) and display name.

    :raises InvalidInput: not a magnet link, or one without a BitTorrent info-hash.
    """
    text = link.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() != "magnet":
        raise InvalidInput(f"{text[:80]!r} is not a magnet link (it should start with 'magnet:?')")
    query = parse_qs(parts.query)
    v1: str | None = None
    v2: str | None = None
    for topic in query.get("xt", []):
        kind, _, value = topic.partition(":")
        scheme, _, digest = value.partition(":")
        if kind.lower() != "urn":
            continue
        if scheme.lower() == "btih" and _HEX40.fullmatch(digest):
            v1 = v1 or digest.lower()
        elif scheme.lower() == "btih" and _BASE32.fullmatch(digest):
            try:
                v1 = v1 or base64.b32decode(digest.upper()).hex()
            except binascii.Error:
                continue
        elif scheme.lower() == "btmh" and (found := _BTMH.fullmatch(digest)):
            v2 = v2 or found.group(1).lower()
    info_hash = v1 or v2  # the v1 hash names a hybrid torrent, as the engine does
    if info_hash is None:
        raise InvalidInput(
            "magnet link has no BitTorrent info-hash: it needs 'xt=urn:btih:<40 hex or 32 base32 characters>'"
        )
    names = query.get("dn")
    return TorrentInfo(info_hash=info_hash, name=names[0] if names else None, files=None, magnet=text)
