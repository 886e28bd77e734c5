"""A real download, ``kill -9`` half-way, a restart: how much verified progress the engine resumes from.

``revaer run`` (libtorrent, PostgreSQL) downloads a payload from a rate-limited
loopback seeder; at about half of it the daemon gets SIGKILL. A fresh
libtorrent session then hashes what is on disk (what a recheck would find),
and the daemon starts again: the first progress its catalog shows is what the
engine resumed from its stored resume data. Shared by the reliability test and
the fault bench, which prints the ratio.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import attrs
import httpx
import libtorrent as lt

from revaer_core.control.metainfo import read_metainfo
from revaer_core.demo.seeder import LoopbackTorrent, Seeder, make_payload
from revaer_core.testing.clients import free_port
from revaer_core.testing.process import DaemonProcess, revaer, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import pg_options

_MIB = 1024 * 1024
#: States in which libtorrent has not finished reading what is on disk.
_CHECKING = (
    lt.torrent_status.checking_resume_data,
    lt.torrent_status.checking_files,
    lt.torrent_status.queued_for_checking,
)


@attrs.frozen
class ResumeAfterKill:
    """What one kill and restart showed."""

    total: int  #: wanted bytes
    catalog_at_kill: int  #: the progress the catalog showed just before the kill
    verified_at_kill: int  #: wanted bytes in pieces whose hash matches what is on disk after the kill
    shown: tuple[int, ...]  #: every progress the restarted daemon's catalog showed, first to last
    completed: bool  #: the restarted daemon finished the download from the seeder
    restart_log: str  #: the restarted daemon's stderr

    @property
    def resumed(self) -> int:
        """The first progress the restarted catalog showed: what the engine resumed from."""
        return self.shown[0]

    @property
    def ratio(self) -> float:
        """The resumed progress against the verified progress at the kill (target >= 0.95)."""
        return self.resumed / self.verified_at_kill if self.verified_at_kill else 0.0

    def summary(self) -> str:
        total = self.total or 1
        return (
            f"kill -9 with {self.catalog_at_kill / total:.1%} shown, {self.verified_at_kill / total:.1%} verified on"
            f" disk; resumed at {self.resumed / total:.1%}: {self.ratio:.1%} of the verified progress"
        )


def verified_bytes(metainfo: bytes, save_path: Path, timeout: float = 120) -> int:
    """What a full recheck finds on disk: a fresh session with no peers hashes every piece."""
    session = lt.session(
        lt.session_params(
            {
                "listen_interfaces": "127.0.0.1:0",
                "enable_dht": False,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
            }
        )
    )
    params = lt.load_torrent_buffer(metainfo)
    params.save_path = str(save_path)
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = session.add_torrent(params)
    end = time.monotonic() + timeout
    while True:
        status = handle.status()
        if status.state not in _CHECKING and status.has_metadata:
            return int(status.total_wanted_done)
        if time.monotonic() > end:
            raise AssertionError(f"the recheck of {save_path} did not finish within {timeout:g} s")
        time.sleep(0.05)


def _progress(api: str, torrent_id: str) -> tuple[int, int, str] | None:
    """(downloaded, total, state) from the catalog, ``None`` while the API does not answer."""
    try:
        answer = httpx.get(f"{api}/v1/torrents/{torrent_id}", timeout=5)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    body = answer.json()
    return int(body["progress"]["downloaded"]), int(body["progress"]["total"]), str(body["state"])


def resume_after_kill(
    root: Path,
    pg_url: str,
    schema: str,
    *,
    size: int = 64 * _MIB,
    rate: int = 3 * _MIB,  #: 4.7 % of the size a second, as 10 MiB/s is of 200 MiB
    kill_at: float = 0.5,
    piece_size: int = 64 * 1024,
) -> ResumeAfterKill:
    """Download ``size`` bytes at ``rate`` bytes/s, SIGKILL the daemon at ``kill_at`` of it, restart, finish."""
    engine_port, api_port = free_port(), free_port()
    downloads = root / "downloads"
    config = write_config(
        root / "revaer.toml",
        {
            "runtime": {"backend": "postgres", "data_dir": str(root / "data")},
            "runtime.postgres": pg_options(pg_url, schema),
            "engine": {"download_dir": str(downloads), "listen_interfaces": f"127.0.0.1:{engine_port}"},
            "api": {"port": api_port},
        },
    )
    torrent = LoopbackTorrent.of(make_payload(root / "seed", "big-show", {"big-show.mkv": size}), piece_size=piece_size)
    torrent_id = str(read_metainfo(torrent.metainfo).torrent_id)
    api = f"http://127.0.0.1:{api_port}"
    peer = ("127.0.0.1", engine_port)
    with Seeder(torrent, timeout_s=120) as seeder:
        (seeded,) = seeder.engine.torrent_ids()
        seeder.engine.set_limits(seeded, None, rate)
        first = DaemonProcess([], config=config, workdir=root, product=True)
        try:
            first.wait_running(timeout=120)
            added = revaer("torrents", "add", str(torrent.write(root / "big-show.torrent")), config=config)
            assert added.returncode == 0, added.stderr
            seeder.engine.connect_peer(read_metainfo(torrent.metainfo).torrent_id, peer)
            shown_before = [0]

            def half_way() -> bool:
                got = _progress(api, torrent_id)
                if got is not None:
                    shown_before[0] = got[0]
                return got is not None and got[0] >= kill_at * got[1]

            wait_for(half_way, f"the download to pass {kill_at:.0%}", timeout=size / rate * 4 + 60, interval=0.05)
        finally:
            first.kill()
        verified = verified_bytes(torrent.metainfo, downloads)
        second = DaemonProcess([], config=config, workdir=root, product=True)
        try:
            shown: list[int] = []
            total = 0

            def answers() -> bool:
                nonlocal total
                if not second.alive:
                    raise AssertionError(f"revaer run exited {second.process.returncode}:\n{second.stderr}")
                got = _progress(api, torrent_id)
                if got is not None:
                    shown.append(got[0])
                    total = got[1]
                return got is not None

            wait_for(answers, "the restarted daemon to show the torrent", timeout=120, interval=0.01)
            for _ in range(20):  # without a peer it can only show what it resumed from
                answers()
                time.sleep(0.05)
            seeder.engine.set_limits(seeded, None, None)
            seeder.engine.connect_peer(read_metainfo(torrent.metainfo).torrent_id, peer)
            done = [False]

            def finished() -> bool:
                got = _progress(api, torrent_id)
                if got is not None:
                    shown.append(got[0])
                    done[0] = got[2] in {"seeding", "completed"} and got[0] == got[1]
                return done[0]

            with contextlib.suppress(AssertionError):  # reported as not completed
                wait_for(finished, "the restarted daemon to finish the download", timeout=120, interval=0.05)
            log = second.stderr
        finally:
            second.kill()
    return ResumeAfterKill(
        total=total,
        catalog_at_kill=shown_before[0],
        verified_at_kill=verified,
        shown=tuple(shown),
        completed=done[0],
        restart_log=log,
    )
