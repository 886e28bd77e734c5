"""Statuses, sources and jobs the conformance suite writes, edge cases included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs

from revaer_core.sources import AddedVia, StoredSource
from revaer_core.status import MAX_BYTES, FileEntry, Progress, Rates, TorrentState, TorrentStatus

#: A fixed instant with microseconds, which every store must keep.
EPOCH = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)

#: Info-hashes as statuses carry them, lower-case hex: a v1 SHA-1 (40 digits) and a v2 SHA-256 (64).
V1_INFO_HASH = "0123456789abcdef0123456789abcdef01234567"
V2_INFO_HASH = "fedcba9876543210" * 4

#: Metainfo of about 2 MiB holding every byte value, starting and ending with NUL: a large .torrent
#: must come back byte for byte, never cut at a NUL nor decoded as text.
BIG_METAINFO = b"\x00" + bytes(range(256)) * 8192 + b"\x00"

#: A small but well-formed .torrent (bencoded): what most stored sources look like.
SMALL_METAINFO = (
    b"d4:infod6:lengthi1000000e4:name13:torrent-0000012:piece lengthi262144e6:pieces20:" + bytes(20) + b"ee"
)


def status(n: int = 0, **changes: Any) -> TorrentStatus:
    """A plain downloading torrent, distinct for each ``n``, with ``changes`` applied."""
    base = TorrentStatus(
        id=uuid.UUID(int=(n + 1) * 0x1000_0000_0000_0001),
        name=f"torrent-{n:05d}",
        state=TorrentState.DOWNLOADING,
        progress=Progress(downloaded=n * 10, total=1_000_000, eta_seconds=60),
        rates=Rates(download_bps=1024, upload_bps=256, ratio=0.25),
        files=(FileEntry(index=0, path=f"torrent-{n:05d}/payload.bin", size=1_000_000, bytes_completed=n * 10),),
        download_dir="/srv/downloads",
        added_at=EPOCH + timedelta(seconds=n),
        last_updated=EPOCH + timedelta(seconds=n, milliseconds=500),
    )
    return attrs.evolve(base, **changes)


def edge_cases() -> Iterator[tuple[str, TorrentStatus]]:
    """(label, status) pairs covering every field a store must round-trip."""
    yield "plain", status(1)
    yield (
        "every field set",
        status(
            2,
            name="Every Field",
            state=TorrentState.COMPLETED,
            progress=Progress(downloaded=5_000, total=5_000, eta_seconds=0),
            rates=Rates(download_bps=0, upload_bps=12_345, ratio=1.5),
            files=(
                FileEntry(index=0, path="Every Field/a.mkv", size=4_000, bytes_completed=4_000, priority=7),
                FileEntry(
                    index=1, path="Every Field/sub/b.nfo", size=1_000, bytes_completed=0, priority=0, selected=False
                ),
            ),
            library_path="/srv/library/Every Field",
            sequential=True,
            completed_at=EPOCH + timedelta(hours=1),
            info_hash=V1_INFO_HASH,
            paused=True,
            labels=("movies", "4k"),
            download_limit=1_048_576,
            upload_limit=0,
        ),
    )
    yield (
        "unicode name and paths",
        status(
            3,
            name="Ünïcødé — 日本語 🎬 \u200b",
            files=(FileEntry(index=0, path="Ünïcødé/🎬 ファイル.mkv", size=1, bytes_completed=1),),
        ),
    )
    yield (
        "huge byte counts",
        status(
            4,
            progress=Progress(downloaded=MAX_BYTES, total=MAX_BYTES, eta_seconds=MAX_BYTES),
            rates=Rates(download_bps=MAX_BYTES, upload_bps=MAX_BYTES, ratio=1e300),
            files=(FileEntry(index=0, path="big", size=MAX_BYTES, bytes_completed=MAX_BYTES),),
        ),
    )
    yield "empty file list", status(5, files=())
    yield "absent file list", status(6, files=None, name=None, state=TorrentState.FETCHING_METADATA)
    yield (
        "failed with a message",
        status(7, state=TorrentState.FAILED, failure="tracker said: torrent not registered ('quoted'); retry later"),
    )
    yield (
        "no optional fields",
        TorrentStatus(id=uuid.UUID(int=8), added_at=EPOCH, last_updated=EPOCH, progress=Progress(eta_seconds=None)),
    )
    yield (
        "other time zones",
        status(
            9,
            added_at=datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-11))),
            last_updated=datetime(2026, 1, 2, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))),
            completed_at=datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
            state=TorrentState.SEEDING,
        ),
    )
    yield (
        "stopped, sequential, paths with quotes and backslashes",
        status(
            10,
            state=TorrentState.STOPPED,
            sequential=True,
            name='It\'s a "quoted" name; DROP TABLE torrents; --',
            download_dir="C:\\Users\\me\\Downloads",
            files=tuple(FileEntry(index=i, path=f"dir/{i}\\'x'.bin", size=i, bytes_completed=0) for i in range(50)),
        ),
    )
    yield (
        "the user's choices: v2 info-hash, unicode labels, limits of 0 and 2^63-1",
        status(
            11,
            state=TorrentState.STOPPED,
            paused=True,
            info_hash=V2_INFO_HASH,
            labels=("Ünïcødé", "日本語", "🎬 films", "it's; DROP TABLE torrents; --", "Ünïcødé", "a\\b"),
            download_limit=0,
            upload_limit=MAX_BYTES,
        ),
    )


def source(n: int = 0, **changes: Any) -> StoredSource:
    """The source of :func:`status` ``(n)``: a small .torrent added through the API, with ``changes`` applied.

    A change to a magnet link must say ``metainfo=None`` too: a source holds exactly one of the two.
    """
    base = StoredSource(
        torrent_id=status(n).id,
        added_at=EPOCH + timedelta(seconds=n),
        metainfo=SMALL_METAINFO,
        added_via=AddedVia.API,
    )
    return attrs.evolve(base, **changes)


def source_cases() -> Iterator[tuple[str, StoredSource]]:
    """(label, source) pairs covering every field a store must round-trip, each of a different torrent."""
    yield "small metainfo", source(1)
    yield "metainfo of ~2 MiB with NULs", source(2, metainfo=BIG_METAINFO, file_priorities=(7, 0, 4, 1))
    yield (
        "magnet v1, unicode name, trackers",
        source(
            3,
            metainfo=None,
            magnet=f"magnet:?xt=urn:btih:{V1_INFO_HASH}&dn=Ünïcødé 日本語 🎬&tr=udp%3A%2F%2Ftracker.example%3A1337"
            "&tr=https://tracker.example/announce?a=1&b='2'",
            added_via=AddedVia.CLI,
        ),
    )
    yield (
        "magnet v2, priorities for files not yet known",
        source(
            4,
            metainfo=None,
            magnet=f"magnet:?xt=urn:btmh:1220{V2_INFO_HASH}",
            file_priorities=(0, 0, 0, 7, 1, 2, 3, 5, 6),
            added_via=AddedVia.WATCH,
        ),
    )
    yield (
        "imported, another time zone",
        source(
            5,
            added_via=AddedVia.IMPORT,
            added_at=datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        ),
    )


def progressed(status: TorrentStatus, mark: int, **changes: Any) -> TorrentStatus:
    """``status`` with progress and rates all set to ``mark``: a write that says which it was, and no torn one."""
    return attrs.evolve(
        status,
        progress=Progress(downloaded=mark, total=status.progress.total, eta_seconds=mark),
        rates=Rates(download_bps=mark, upload_bps=mark, ratio=float(mark)),
        **changes,
    )
