"""The real clients of :mod:`revaer_core.testing.clients`, skipping the test when the client is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from revaer_core.testing import clients
from revaer_core.testing.clients import LocalTorrent, free_port, make_torrents

__all__ = ["LocalTorrent", "Qbittorrent", "Transmission", "free_port", "make_torrents"]


def _skip_unless(binary: str, package: str) -> None:
    try:
        clients.require(binary, package)
    except clients.ClientNotInstalled as exc:
        pytest.skip(str(exc))


class Qbittorrent(clients.Qbittorrent):
    def __init__(self, profile: Path) -> None:
        _skip_unless("qbittorrent-nox", "qbittorrent-nox")
        super().__init__(profile)


class Transmission(clients.Transmission):
    def __init__(self, config: Path, download_dir: Path) -> None:
        _skip_unless("transmission-daemon", "transmission-daemon")
        super().__init__(config, download_dir)
