"""Real BitTorrent clients for the import tests and the start/stop bench: qbittorrent-nox and transmission-daemon.

Each runs with a profile or config folder of the test's own, its Web or RPC
API on a free loopback port and peer discovery off. A test makes local
torrents (:func:`make_torrents`), points the client at their payload so it
verifies what is on disk, changes the user's choices through the client's
API, and stops the client cleanly, so the client writes the state Revaer
imports. A payload file left out (``missing``) leaves its pieces unverified:
partial progress. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import libtorrent as lt

from revaer_core.control.metainfo import read_metainfo

#: Seconds a client may take to start, verify or stop.
CLIENT_WAIT_S = 60.0


class ClientNotInstalled(RuntimeError):
    """The client's program is not on ``PATH``; the message names the Debian package to install."""


def require(binary: str, package: str) -> str:
    """The path of ``binary``.

    :raises ClientNotInstalled: naming the Debian package, when it is not installed.
    """
    path = shutil.which(binary)
    if path is None:
        raise ClientNotInstalled(f"{binary} is not installed: apt-get install {package}")
    return path


def wait_for(condition: Callable[[], bool], what: str, timeout: float = CLIENT_WAIT_S, interval: float = 0.02) -> None:
    """Return once ``condition()`` holds; an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class LocalTorrent:
    """A torrent made by the test: its metainfo, where its payload lies, and the file indices left off disk."""

    name: str
    metainfo: bytes
    save_path: Path
    missing: tuple[int, ...] = ()

    @property
    def info_hash(self) -> str:
        return read_metainfo(self.metainfo).info_hash


def v1_metainfo(folder: Path, piece_size: int = 16 * 1024) -> bytes:
    """A v1 .torrent of ``folder``: no padding files, so every client numbers the files alike."""
    creator = lt.create_torrent(lt.list_files(str(folder)), piece_size, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(creator, str(folder.parent))
    return bytes(lt.bencode(creator.generate()))


def make_torrents(
    root: Path, count: int, *, files: int = 3, size: int = 48 * 1024, missing_in: Sequence[int] = ()
) -> list[LocalTorrent]:
    """``count`` multi-file torrents under ``root``, payload on disk; torrents ``missing_in`` lack their last file."""
    made = []
    for n in range(count):
        name = f"pack-{n:04d}"
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(files):
            (folder / f"part-{i}.bin").write_bytes(uuid.uuid4().bytes * (size // 16 + i * 97))
        metainfo = v1_metainfo(folder)
        missing: tuple[int, ...] = ()
        if n in missing_in:
            (folder / f"part-{files - 1}.bin").unlink()
            missing = (files - 1,)
        made.append(LocalTorrent(name=name, metainfo=metainfo, save_path=root, missing=missing))
    return made


def tiny_torrents(root: Path, count: int, *, size: int = 4 * 1024, prefix: str = "tiny") -> list[LocalTorrent]:
    """``count`` single-file torrents of ``size`` random bytes each, payload under ``root``: many torrents, fast.

    Their files are ``PREFIX-NNNNNN.bin``: sets made with different prefixes can share a download folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    made = []
    for n in range(count):
        name = f"{prefix}-{n:06d}.bin"
        payload = root / name
        payload.write_bytes(os.urandom(size))
        creator = lt.create_torrent(lt.list_files(str(payload)), 16 * 1024, flags=lt.create_torrent.v1_only)
        lt.set_piece_hashes(creator, str(root))
        made.append(LocalTorrent(name=name, metainfo=bytes(lt.bencode(creator.generate())), save_path=root))
    return made


def _stop(process: subprocess.Popen[bytes], graceful: signal.Signals = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(graceful)
        try:
            return process.wait(CLIENT_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class Qbittorrent:
    """qbittorrent-nox with ``--profile`` of the test's own; its BT_backup is :attr:`backup`."""

    def __init__(self, profile: Path) -> None:
        self.binary = require("qbittorrent-nox", "qbittorrent-nox")
        self.profile = profile
        self.port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        config = profile / "qBittorrent" / "config" / "qBittorrent.conf"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "[LegalNotice]\nAccepted=true\n\n"
            "[BitTorrent]\n"
            f"Session\\Port={self.peer_port}\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\n"
            "Session\\PeXEnabled=false\nSession\\Interface=lo\nSession\\InterfaceName=lo\n"
            "Session\\InterfaceAddress=127.0.0.1\nSession\\QueueingSystemEnabled=false\n\n"
            "[Preferences]\n"
            f"WebUI\\Port={self.port}\nWebUI\\Address=127.0.0.1\nWebUI\\LocalHostAuth=false\n"
            "WebUI\\HostHeaderValidation=false\nWebUI\\CSRFProtection=false\nConnection\\UPnP=false\n"
            "General\\Locale=en\n"
        )

    @property
    def backup(self) -> Path:
        return self.profile / "qBittorrent" / "data" / "BT_backup"

    def start(self, *, wait: bool = True) -> None:
        """Launch it; with ``wait``, return once its Web API answers."""
        log = (self.profile / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, f"--profile={self.profile}", f"--webui-port={self.port}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            wait_for(self._answers, "qBittorrent's Web API", CLIENT_WAIT_S, 0.1)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"qbittorrent-nox exited {self.process.returncode}: {self._log()}")
        try:
            return bool(self.call("app/version"))
        except (urllib.error.URLError, ConnectionError):
            return False

    def _log(self) -> str:
        return (self.profile / "stdout.log").read_text(errors="replace")[-2000:]

    def call(
        self, method: str, data: Mapping[str, str] | None = None, *, files: Mapping[str, bytes] | None = None
    ) -> Any:
        """One Web API call (``torrents/info``, ...): form fields, or multipart with ``files``."""
        url = f"http://127.0.0.1:{self.port}/api/v2/{method}"
        headers = {"Referer": f"http://127.0.0.1:{self.port}"}
        body: bytes | None = None
        if files:
            boundary = uuid.uuid4().hex
            parts = []
            for key, value in (data or {}).items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                )
            for name, content in files.items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="torrents"; filename="{name}"\r\n'
                    "Content-Type: application/x-bittorrent\r\n\r\n".encode()
                    + content
                    + b"\r\n"
                )
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        with self._opener.open(urllib.request.Request(url, data=body, headers=headers), timeout=30) as answer:
            text = answer.read().decode()
        try:
            return json.loads(text)
        except ValueError:
            return text

    def add(self, torrent: LocalTorrent, *, tags: Sequence[str] = (), category: str = "") -> None:
        fields = {"savepath": str(torrent.save_path), "tags": ",".join(tags), "category": category}
        if category:
            self.call("torrents/createCategory", {"category": category})
        self.call("torrents/add", fields, files={f"{torrent.name}.torrent": torrent.metainfo})

    def torrents(self) -> dict[str, dict[str, Any]]:
        return {t["hash"]: t for t in self.call("torrents/info")}

    def listed(self) -> int:
        """How many torrents the Web API lists with a known state (0 while it does not answer yet)."""
        try:
            listed = self.call("torrents/info")
        except (urllib.error.URLError, ConnectionError):
            return 0
        return sum(1 for t in listed if t.get("state") not in (None, "", "unknown"))

    def settle(self, count: int, timeout: float = CLIENT_WAIT_S) -> None:
        """Wait until ``count`` torrents are in and none is checking any more."""

        def settled() -> bool:
            listed = self.torrents()
            busy = ("checking", "queued", "meta", "allocating", "unknown", "moving")
            return len(listed) == count and not any(t["state"].startswith(busy) for t in listed.values())

        wait_for(settled, "qBittorrent to verify its torrents", timeout, 0.2)

    def take(self, torrents: Sequence[LocalTorrent], timeout: float = CLIENT_WAIT_S) -> None:
        """Start, take ``torrents`` as complete (``skip_checking``: their payload is known whole), stop.

        Its ``BT_backup`` then holds every torrent, as an import reads it.
        """
        self.start()
        try:
            for chunk in range(0, len(torrents), 200):
                files = {f"{t.name}.torrent": t.metainfo for t in torrents[chunk : chunk + 200]}
                self.call(
                    "torrents/add", {"savepath": str(torrents[0].save_path), "skip_checking": "true"}, files=files
                )
            self.settle(len(torrents), timeout)
            # it writes each .fastresume soon after it takes the torrent; stopped earlier, it loses some
            wait_for(lambda: len(list(self.backup.glob("*.fastresume"))) >= len(torrents), "its BT_backup", timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        """Quit through the API, so qBittorrent writes every fastresume."""
        if self.process is None:
            return
        with contextlib.suppress(urllib.error.URLError, ConnectionError):
            self.call("app/shutdown", {})
        try:
            self.process.wait(CLIENT_WAIT_S)
        except subprocess.TimeoutExpired:
            _stop(self.process)
        self.process = None


class Transmission:
    """transmission-daemon ``-f -g CONFIG`` with its RPC on 127.0.0.1; its state lies in :attr:`config`."""

    def __init__(self, config: Path, download_dir: Path) -> None:
        self.binary = require("transmission-daemon", "transmission-daemon")
        self.config = config
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._session = ""
        config.mkdir(parents=True, exist_ok=True)
        settings = {
            "rpc-enabled": True,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": self.port,
            "rpc-authentication-required": False,
            "rpc-whitelist-enabled": False,
            "rpc-host-whitelist-enabled": False,
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "peer-port": free_port(),
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "download-dir": str(download_dir),
            "incomplete-dir-enabled": False,
            "download-queue-enabled": False,
            "seed-queue-enabled": False,
            "message-level": 1,
        }
        (config / "settings.json").write_text(json.dumps(settings))

    def start(self, *, wait: bool = True) -> None:
        """Launch it; with ``wait``, return once its RPC answers."""
        log = (self.config / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-f", "-g", str(self.config)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            wait_for(self._answers, "Transmission's RPC", CLIENT_WAIT_S, 0.1)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"transmission-daemon exited {self.process.returncode}")
        try:
            self.rpc("session-get")
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    def rpc(self, method: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """One RPC call; the session id handshake (409) is done here."""
        body = json.dumps({"method": method, "arguments": dict(arguments or {})}).encode()
        for _ in range(2):
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/transmission/rpc",
                data=body,
                headers={"X-Transmission-Session-Id": self._session, "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - a loopback URL we built
                    reply = json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 409:
                    self._session = exc.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise
            if reply.get("result") != "success":
                raise AssertionError(f"transmission {method}: {reply.get('result')}")
            return reply.get("arguments", {})
        raise AssertionError("transmission kept refusing the session id")

    def add(self, torrent: LocalTorrent) -> int:
        added = self.rpc(
            "torrent-add",
            {"metainfo": base64.b64encode(torrent.metainfo).decode(), "download-dir": str(torrent.save_path)},
        )
        entry = added.get("torrent-added") or added.get("torrent-duplicate")
        return int(entry["id"])

    FIELDS = ("id", "hashString", "status", "haveValid", "sizeWhenDone", "labels", "wanted", "priorities")

    def torrents(self) -> dict[str, dict[str, Any]]:
        listed = self.rpc("torrent-get", {"fields": list(self.FIELDS)})["torrents"]
        return {t["hashString"]: t for t in listed}

    def listed(self) -> int:
        """How many torrents the RPC lists, each with its status (0 while it does not answer yet)."""
        try:
            return len(self.rpc("torrent-get", {"fields": ["id", "status"]})["torrents"])
        except (urllib.error.URLError, ConnectionError):
            return 0

    def settle(self, count: int, timeout: float = CLIENT_WAIT_S) -> None:
        """Wait until ``count`` torrents are in and none waits for or does a verify (status 1, 2)."""
        wait_for(
            lambda: len(t := self.torrents()) == count and all(v["status"] not in (1, 2) for v in t.values()),
            "Transmission to verify its torrents",
            timeout,
            0.2,
        )

    def stop(self) -> None:
        """SIGTERM: transmission-daemon saves every .resume as it quits."""
        if self.process is not None:
            _stop(self.process)
            self.process = None
