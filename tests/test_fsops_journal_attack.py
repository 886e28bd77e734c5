"""End to end: a torrent that carries a forged FsOps journal, against ``revaer run`` with libtorrent and PostgreSQL.

The attack: with ``library_root`` inside ``download_dir``, a torrent named
``library`` whose payload holds ``.revaer/<uuid>.meta.json`` (an unfinished job
whose source is a victim's folder, fingerprinted as FsOps fingerprints) is
written by libtorrent where FsOps used to keep its journal, and the next start
copied the victim's files into the library. Now that layout is refused at
start; with separate folders the same torrent downloads and is copied like any
other, and forged journals left where FsOps used to look, or planted in the
data dir, are refused with a warning on the next start: nothing is copied.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from revaer_core.control.metainfo import read_metainfo
from revaer_core.demo.seeder import LoopbackTorrent, Seeder
from revaer_core.fsops import FsOpsPolicy, JobRequest, Pipeline
from revaer_core.fsops.meta import JobMeta
from revaer_core.fsops.paths import META_DIR
from revaer_core.fsops.policy import journal_dir_of
from revaer_core.settings import load_settings
from revaer_core.testing.process import Daemons, revaer, write_config
from revaer_core.testing.waiting import wait_for
from revaer_runtime_pg.testing import pg_options

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = b"the victim's private file\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _forged_journal(config: Path, data: Path, victim: Path) -> tuple[uuid.UUID, bytes]:
    """An unfinished job copying ``victim``, fingerprinted for the policy ``config`` gives."""
    settings = load_settings(config, env={})
    policy = FsOpsPolicy.from_settings(settings.fsops, journal_dir=journal_dir_of(data))
    forged = uuid.uuid4()
    request = JobRequest(torrent_id=forged, name=victim.name, source=victim)
    meta = JobMeta(torrent_id=forged, fingerprint=Pipeline(policy).fingerprint(request), request=request)
    return forged, json.dumps(meta.to_json()).encode()


def _holds_secret(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.read_bytes() == SECRET]


def test_a_torrent_carrying_a_forged_journal_copies_nothing(
    daemons: Daemons, tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    downloads, library, data = tmp_path / "downloads", tmp_path / "library", tmp_path / "data"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret.txt").write_bytes(SECRET)
    engine_port, api_port = _free_port(), _free_port()

    def config(library_root: Path) -> Path:
        return write_config(
            tmp_path / "revaer.toml",
            {
                "runtime": {"backend": "postgres", "data_dir": str(data), "flush_interval_ms": 50},
                "runtime.postgres": pg_options(pg_url, pg_schema),
                "engine": {
                    "download_dir": str(downloads),
                    "listen_interfaces": f"127.0.0.1:{engine_port}",
                    "alert_poll_ms": 20,
                    "status_interval_ms": 100,
                },
                "api": {"port": api_port},
                "fsops": {"enabled": True, "library_root": str(library_root), "transfer_mode": "copy"},
            },
        )

    # The attack's layout is refused before anything starts.
    refused = revaer("run", config=config(downloads / "library"), timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"revaer: error: engine.download_dir and fsops.library_root: {downloads} and {downloads / 'library'} "
        "overlap (one lies inside the other); give each a folder of its own, so no torrent can write where "
        "FsOps or the daemon keep their own files"
    ]

    # Separate folders: the torrent named "library", carrying .revaer/<uuid>.meta.json, downloads for real.
    safe = config(library)
    forged, document = _forged_journal(safe, data, victim)
    payload = tmp_path / "seed" / "library"
    (payload / META_DIR).mkdir(parents=True)
    (payload / META_DIR / f"{forged}.meta.json").write_bytes(document)
    (payload / "readme.txt").write_bytes(b"nothing to see\n")
    torrent = LoopbackTorrent.of(payload)
    daemon = daemons(config=safe, product=True)
    daemon.wait_running()
    added = revaer("torrents", "add", str(torrent.write(tmp_path / "library.torrent")), config=safe)
    assert added.returncode == 0, added.stderr
    with Seeder(torrent) as seeder:
        seeder.engine.connect_peer(read_metainfo(torrent.metainfo).torrent_id, ("127.0.0.1", engine_port))
        wait_for(lambda: (library / "library" / "readme.txt").is_file(), "FsOps to copy the torrent", timeout=90)
    assert (downloads / "library" / META_DIR / f"{forged}.meta.json").read_bytes() == document  # landed, unread

    # What an earlier version would have read, and what a tamperer could plant in the data dir.
    (library / META_DIR).mkdir(exist_ok=True)
    (library / META_DIR / f"{forged}.meta.json").write_bytes(document)
    planted, planted_document = _forged_journal(safe, data, victim)
    (journal_dir_of(data) / f"{planted}.meta.json").write_bytes(planted_document)
    assert daemon.terminate() == 0, daemon.stderr

    restarted = daemons(config=safe, product=True)
    restarted.wait_running()
    log = restarted.stderr
    assert "FsOps ignores 1 job journal(s) in " + str(library / META_DIR) in log
    assert f"FsOps journal of torrent {planted} is refused (the store holds no torrent or job {planted})" in log
    assert "nothing is copied or moved" in log
    assert "FsOps resumes" not in log
    assert _holds_secret(library) == [] and _holds_secret(downloads) == []
    assert (victim / "secret.txt").read_bytes() == SECRET
    assert restarted.terminate() == 0, restarted.stderr
