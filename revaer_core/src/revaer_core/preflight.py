"""What ``revaer run`` checks before it opens anything: settings that need the filesystem or each other.

:func:`revaer_core.settings.load_settings` checks each key on its own; the
checks here look at the folders the keys name and at how they relate, so a
download dir under a regular file, or a library root a torrent could write
into, is one error at start rather than a failed job later. Nothing here
opens the store, starts the engine or binds a port.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

from revaer_core.errors import ConfigError
from revaer_core.settings import Settings

#: The folder of the data dir that may hold the downloads (the default ``engine.download_dir``).
#: Anywhere else inside the data dir a torrent could write over the runtime's own files.
DOWNLOADS_IN_DATA_DIR = "downloads"


def check_startup(settings: Settings, *, serve_api: bool = True) -> None:
    """Every check that can fail a start, run before the store opens; one ConfigError naming the key(s).

    :param serve_api: whether the HTTP API will be served (its token and binding are checked then).
    """
    check_folders(settings)
    check_overlaps(settings)
    if settings.fsops.enabled:
        from revaer_core.fsops.policy import FsOpsPolicy, journal_dir_of

        # owner, group and roots: named by their fsops.* key
        FsOpsPolicy.from_settings(settings.fsops, journal_dir=journal_dir_of(settings.runtime.data_dir))
    if serve_api:
        check_api_binding(settings)


def _folders(settings: Settings) -> Iterator[tuple[str, Path]]:
    """(key, folder) for every folder the daemon writes to or reads from."""
    yield "runtime.data_dir", settings.runtime.data_dir
    yield "engine.download_dir", settings.engine.download_dir
    for n, root in enumerate(settings.engine.allowed_save_roots):
        yield f"engine.allowed_save_roots[{n}]", root
    if settings.engine.watch_dir is not None:
        yield "engine.watch_dir", settings.engine.watch_dir
    if settings.engine.watch.save_path is not None:
        yield "engine.watch.save_path", settings.engine.watch.save_path
    if settings.fsops.enabled and settings.fsops.library_root is not None:
        yield "fsops.library_root", settings.fsops.library_root
        for n, root in enumerate(settings.fsops.allowed_roots):
            yield f"fsops.allowed_roots[{n}]", root


def check_folders(settings: Settings) -> None:
    """Refuse a folder setting that is a regular file, or lies under one (it could never be created)."""
    for key, folder in _folders(settings):
        for path in (folder, *folder.parents):
            if not os.path.lexists(path) or path.is_dir():
                continue
            what = f"a symlink to {os.readlink(path)}, which does not exist" if path.is_symlink() else "a file"
            where = f"is {what}" if path == folder else f"lies under {path}, which is {what}"
            raise ConfigError(key, f"{folder} {where}, not a folder; point it at a folder")


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it, symlinks resolved as far as they exist."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def check_overlaps(settings: Settings) -> None:
    """Refuse a download dir, library root, watch dir and data dir of which one lies inside another.

    A torrent writes anything it likes under its save path: with the library
    root (or the data dir, where FsOps keeps its journal and the API its token,
    or the watch dir, whose ``.torrent`` files are added unasked) inside it, a
    torrent could plant files the daemon trusts. The one layout
    allowed is the default: downloads in the data dir's own ``downloads`` folder.
    """
    data = ("runtime.data_dir", settings.runtime.data_dir)
    torrent_roots = [("engine.download_dir", settings.engine.download_dir)]
    torrent_roots += [(f"engine.allowed_save_roots[{n}]", r) for n, r in enumerate(settings.engine.allowed_save_roots)]
    trusted = [data]
    if settings.fsops.enabled and settings.fsops.library_root is not None:
        trusted.append(("fsops.library_root", settings.fsops.library_root))
        if _inside(settings.fsops.library_root, data[1]) or _inside(data[1], settings.fsops.library_root):
            _overlap(data, trusted[1])
    if settings.engine.watch_dir is not None:
        trusted.append(("engine.watch_dir", settings.engine.watch_dir))
    for key, root in torrent_roots:
        for other_key, other in trusted:
            if other_key == data[0] and _downloads_of(root, other):
                continue
            if _inside(root, other) or _inside(other, root):
                hint = f" (downloads may go in {other / DOWNLOADS_IN_DATA_DIR})" if other_key == data[0] else ""
                _overlap((key, root), (other_key, other), hint)


def _downloads_of(download_dir: Path, data_dir: Path) -> bool:
    """Whether a download folder is (or lies in) the data dir's own downloads folder."""
    return _inside(download_dir, data_dir / DOWNLOADS_IN_DATA_DIR)


def _overlap(first: tuple[str, Path], second: tuple[str, Path], hint: str = "") -> None:
    (a, a_path), (b, b_path) = first, second
    raise ConfigError(
        f"{a} and {b}",
        f"{a_path} and {b_path} overlap (one lies inside the other); give each a folder of its own{hint}, "
        "so no torrent can write where FsOps or the daemon keep their own files",
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only ever reaches this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen on ``host`` off loopback without a ``token``: one ConfigError naming ``api.token``."""
    if not token and not is_loopback(host):
        raise ConfigError(
            "api.token",
            f"required when the API listens on {host!r}, which is not loopback "
            "(set [api] token or REVAER_API_TOKEN, or bind to 127.0.0.1)",
        )


def check_api_binding(settings: Settings) -> None:
    """Refuse an API that would listen off loopback without a token, before anything starts.

    The token is the daemon's own (:func:`revaer_core.control.token.daemon_token`):
    the configured one, else the data dir's, made now if it is missing.
    """
    from revaer_core.control.token import daemon_token

    if not is_loopback(settings.api.host):
        check_exposure(settings.api.host, daemon_token(settings))
