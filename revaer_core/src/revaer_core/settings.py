"""Settings: a TOML file, overridden by environment variables, checked key by key.

Every problem is a :class:`ConfigError` naming the key (``runtime.backend``)
or the variable (``REVAER_RUNTIME_PERSISTENCE``) and what would be accepted.

A relative path in the settings file is taken relative to the folder the file
is in, so a file means the same wherever the process starts; a relative path in
an environment variable (``REVAER_DATA_DIR``) is taken relative to the current
folder, as a shell user expects. Either way ``~`` is expanded and what
:func:`load_settings` hands on is absolute. The roots that bound where files may be written
(``engine.allowed_save_roots``, ``fsops.library_root``, ``fsops.allowed_roots``)
are the exception: they must be written absolute, so the boundary is stated
outright rather than derived from where the file happens to live.

``[runtime.<backend>]`` tables are kept unread here: checking that each names an
installed backend needs the plugin registry, which this module must not import
(see :func:`revaer_core.plugins.check_backend_tables`).
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
from attrs import AttrsInstance

from revaer_core.errors import ConfigError
from revaer_core.jobs import TransferMode

T = TypeVar("T", bound=AttrsInstance)

CONFIG_ENV = "REVAER_CONFIG"
DEFAULT_CONFIG = Path("revaer.toml")


class Durability(enum.StrEnum):
    """When an event's write reaches the store."""

    BATCHED = "batched"  #: write-behind: the handler returns at once, the writer flushes in batches
    SYNC = "sync"  #: the handler waits for its own write (one write per event)


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/revaer``, or ``~/.local/share/revaer``.

    A relative ``XDG_DATA_HOME`` is ignored, as the XDG base-directory spec
    asks: it would make the data dir depend on where the process starts.
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "revaer"


#: attrs metadata of a path setting that must be written absolute: it is not resolved against the settings file.
ABSOLUTE_ONLY: Mapping[str, bool] = {"absolute_only": True}
#: Ranges of the numbers the writer runs on (low, high): a shorter flush interval is a flush per event,
#: a longer one loses more than a minute of progress to a crash; the deadline bounds how long a stop may take.
FLUSH_INTERVAL_MS = (10, 60_000)
SHUTDOWN_DEADLINE_S = (0.5, 3600)
#: The largest body ``[api] max_upload_bytes`` may allow: a .torrent of a huge payload is a few MiB.
MAX_UPLOAD_BYTES = 1 << 30
_ROOTS = " (a root that bounds where files go is never taken relative to the settings file)"


@attrs.frozen
class RuntimeSettings:
    """The ``[runtime]`` table: which store, and how the runtime writes to it."""

    backend: str = "none"  #: none, memory, postgres, or any installed plugin's name
    persistence: bool = True  #: the master switch; false means no store whatever ``backend`` says
    #: where the store keeps its files; env ``REVAER_DATA_DIR`` wins; default
    #: ``$XDG_DATA_HOME/revaer``, else ``~/.local/share/revaer``
    data_dir: Path = attrs.field(factory=default_data_dir)
    flush_interval_ms: int = 250
    durability: Durability = Durability.BATCHED
    shutdown_deadline_s: float = 10.0
    #: ``[runtime.<backend>]`` tables, handed to the backend unread
    backend_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    @property
    def selected_backend(self) -> str | None:
        """The backend to load, or ``None`` when persistence is off."""
        if not self.persistence or self.backend == "none":
            return None
        return self.backend

    def options_for(self, backend: str) -> Mapping[str, Any]:
        """The ``[runtime.<backend>]`` table as written (relative paths in it are not resolved)."""
        return self.backend_options.get(backend, {})


def default_download_dir(env: Mapping[str, str] | None = None) -> Path:
    """``<default data dir>/downloads``: where torrents land unless a caller says otherwise.

    It follows the *default* data dir, not ``runtime.data_dir``: setting
    ``data_dir`` leaves the downloads where they were (``engine.download_dir`` moves them).
    """
    return default_data_dir(env) / "downloads"


@attrs.frozen
class WatchSettings:
    """The ``[engine.watch]`` table: what a torrent dropped into ``engine.watch_dir`` is added with."""

    paused: bool = False
    labels: tuple[str, ...] = ()
    save_path: Path | None = None  #: inside ``engine.allowed_save_roots``; default ``engine.download_dir``
    poll_interval_s: float = 1.0  #: how often the folder is scanned; a file must keep its size for one scan


@attrs.frozen
class EngineSettings:
    """The ``[engine]`` table: how the BitTorrent engine listens and keeps its resume data.

    Defaults are safe for a first run: loopback only, no peer discovery, no port mapping.
    """

    listen_interfaces: str = "127.0.0.1:0"  #: libtorrent syntax, e.g. ``"0.0.0.0:6881,[::]:6881"``
    enable_dht: bool = False
    enable_lsd: bool = False
    enable_upnp: bool = False
    enable_natpmp: bool = False
    download_dir: Path = attrs.field(factory=default_download_dir)
    resume_save_interval_s: float = 10.0  #: how often resume data of changed torrents is saved
    alert_poll_ms: int = 100  #: longest the engine thread waits for libtorrent before its own timers run
    status_interval_ms: int = 500  #: how often progress is asked for (and published)
    #: peer connections open at once, over every torrent: each active torrent needs at least one
    connections_limit: int = 200
    #: where an operator may put a torrent's files; empty means ``download_dir`` only; absolute paths only
    allowed_save_roots: tuple[Path, ...] = attrs.field(default=(), metadata=ABSOLUTE_ONLY)
    watch_dir: Path | None = None  #: a folder whose .torrent files are added (then renamed NAME.added)
    watch: WatchSettings = attrs.field(factory=WatchSettings)

    @property
    def save_roots(self) -> tuple[Path, ...]:
        """The folders a save path must lie inside."""
        return self.allowed_save_roots or (self.download_dir,)


#: Port the HTTP API listens on unless ``[api] port`` says otherwise.
DEFAULT_API_PORT = 7080


@attrs.frozen
class ApiSettings:
    """The ``[api]`` table: where the HTTP API listens and the token its write endpoints want.

    The token is left out of ``repr`` so that printing settings never shows it.
    """

    host: str = "127.0.0.1"  #: loopback by default; any other address needs ``token``
    port: int = DEFAULT_API_PORT
    token: str | None = attrs.field(default=None, repr=False)  #: bearer token; env ``REVAER_API_TOKEN`` wins
    #: a second bearer token that reads only (writes with it get 403); env ``REVAER_API_READ_TOKEN`` wins
    read_token: str | None = attrs.field(default=None, repr=False)
    metrics_public: bool = False  #: off loopback, ``/metrics`` answers without a token (for a scraper)
    max_upload_bytes: int = 10 * 1024 * 1024  #: largest .torrent (or request body) an add accepts
    max_event_streams: int = 256  #: ``/v1/events`` clients served at once; more get a 503


class FsOpsPreset(enum.StrEnum):
    """Ready-made exclude rules added to ``fsops.exclude``."""

    NONE = "none"
    SKIP_EXTRAS = "skip_extras"  #: samples, extras, proof and screenshots stay out of the library


@attrs.frozen
class FsOpsSettings:
    """The ``[fsops]`` table: how a completed torrent's payload is put into the library.

    Globs match ``/``-separated paths relative to the torrent, case-insensitively;
    a glob without ``/`` matches a file or directory name at any depth.
    """

    enabled: bool = False
    library_root: Path | None = attrs.field(default=None, metadata=ABSOLUTE_ONLY)  #: required when enabled; absolute
    #: destinations must resolve under one; empty means library_root; absolute paths only
    allowed_roots: tuple[Path, ...] = attrs.field(default=(), metadata=ABSOLUTE_ONLY)
    transfer_mode: TransferMode = TransferMode.COPY
    extract: bool = True  #: unpack zip, tar and tar.gz archives (the archive itself is not transferred)
    flatten: bool = True  #: drop a single directory nested directly inside the torrent's folder
    include: tuple[str, ...] = ()  #: empty means every file
    exclude: tuple[str, ...] = ()
    preset: FsOpsPreset = FsOpsPreset.NONE
    cleanup: tuple[str, ...] = ()  #: removed from the library after transfer...
    cleanup_keep: tuple[str, ...] = ()  #: ...unless one of these matches
    chmod_file: str | None = None  #: octal, e.g. "0644"
    chmod_dir: str | None = None  #: octal, e.g. "0755"
    owner: str | None = None  #: user name or uid; applied only where the process may chown
    group: str | None = None  #: group name or gid
    umask: str | None = None  #: octal, e.g. "022": masks created files and dirs when chmod_* is unset
    workers: int = 2  #: FsOps jobs run at once, on their own threads


@attrs.frozen
class Settings:
    """All of Revaer's settings."""

    runtime: RuntimeSettings = attrs.field(factory=RuntimeSettings)
    engine: EngineSettings = attrs.field(factory=EngineSettings)
    api: ApiSettings = attrs.field(factory=ApiSettings)
    fsops: FsOpsSettings = attrs.field(factory=FsOpsSettings)
    source: Path | None = None  #: the file they were read from, if any


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _describe(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}.get(
        tp, str(tp)
    )


def coerce(key: str, value: Any, tp: Any, *, base: Path | None = None) -> Any:
    """``value`` as type ``tp``, or a ConfigError naming ``key``. Strings from the environment are parsed.

    A path has ``~`` expanded; a relative one is joined to ``base`` when given
    (the settings file's folder, or the current folder for a variable).
    """
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else coerce(key, value, inner, base=base)
    if typing.get_origin(tp) is tuple:
        (item, _) = typing.get_args(tp)  # only tuple[X, ...]
        if isinstance(value, list | tuple):
            return tuple(coerce(f"{key}[{i}]", v, item, base=base) for i, v in enumerate(value))
        raise ConfigError(key, f"expected a list, each item {_describe(item)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            return path if base is None else base / path  # joining an absolute path keeps it as it is
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            pass
    raise ConfigError(key, f"expected {_describe(tp)}, got {value!r}")


def build(
    cls: type[T],
    table: Mapping[str, Any],
    prefix: str,
    *,
    extra: frozenset[str] = frozenset(),
    base: Path | None = None,
) -> T:
    """An instance of the attrs class ``cls`` from a TOML table, every key checked.

    Keys in ``extra`` are left for the caller (sub-tables, say). With ``base``
    (the settings file's folder), relative paths are taken relative to it,
    except in fields marked :data:`ABSOLUTE_ONLY`, which the caller checks.
    Without it, paths are kept as written (plugins parsing their own tables).
    """
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in extra:
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"{prefix}.{key}", f"unknown setting{hint}")
        anchor = None if fields[key].metadata.get("absolute_only") else base
        values[key] = coerce(f"{prefix}.{key}", value, hints[key], base=anchor)
    return cls(**values)


def check_range(key: str, value: float, low: float, high: float, unit: str = "") -> None:
    """A ConfigError naming ``key`` unless ``low <= value <= high`` (NaN and infinities never are).

    Every number a daemon runs on has a sane range: a flush interval of 0 means
    one flush per event, one of 10**13 ms overflows the writer's timer.
    """
    if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise ConfigError(key, f"must be between {_number(low)} and {_number(high)}{unit}, got {value!r}")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


#: A host name or device name as libtorrent takes it in ``listen_interfaces`` (``eth0``, ``seed.example``).
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,252})")
_LISTEN_EXAMPLE = "e.g. '0.0.0.0:6881,[::]:6881'"


def parse_listen_interfaces(key: str, text: str) -> tuple[tuple[str, int], ...]:
    """``listen_interfaces`` as (host, port) pairs, or one ConfigError naming ``key`` and the bad item.

    The syntax is libtorrent's: a comma-separated list of ``host:port``, where
    host is an IPv4 address, an IPv6 address in brackets, or a host or device
    name, and the port may end in ``s`` (SSL) or ``l`` (local network).
    """
    pairs: list[tuple[str, int]] = []
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ConfigError(key, f"must not be empty; {_LISTEN_EXAMPLE}")
    for item in items:
        if not item:
            raise ConfigError(key, f"has an empty item in {text!r}; {_LISTEN_EXAMPLE}")
        if item.startswith("["):
            host, close, rest = item[1:].partition("]")
            if not close or not rest.startswith(":"):
                raise ConfigError(key, f"{item!r} is not [IPv6]:port; {_LISTEN_EXAMPLE}")
            port_text = rest[1:]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ConfigError(key, f"{host!r} in {item!r} is not an IPv6 address") from None
        else:
            host, colon, port_text = item.rpartition(":")
            if not colon or not host:
                raise ConfigError(key, f"{item!r} has no port; write host:port, {_LISTEN_EXAMPLE}")
            if ":" in host:
                raise ConfigError(key, f"{item!r}: write an IPv6 address in brackets, e.g. '[::]:6881'")
            if re.fullmatch(r"[0-9.]+", host):
                try:
                    ipaddress.IPv4Address(host)
                except ValueError:
                    raise ConfigError(key, f"{host!r} in {item!r} is not an IPv4 address") from None
            elif not _HOST_NAME.fullmatch(host):
                raise ConfigError(key, f"{host!r} in {item!r} is not an address, host name or device name")
        digits = port_text.rstrip("sl")
        if not (digits.isascii() and digits.isdigit()) or not 0 <= int(digits) <= 65535:
            raise ConfigError(key, f"port {port_text!r} in {item!r} must be between 0 and 65535")
        pairs.append((host, int(digits)))
    return tuple(pairs)


def _runtime(table: Mapping[str, Any], env: Mapping[str, str], base: Path) -> RuntimeSettings:
    if not isinstance(table, Mapping):
        raise ConfigError("runtime", "expected a table ([runtime])")
    simple = set(attrs.fields_dict(RuntimeSettings)) - {"backend_options"}
    sub_tables = {k for k, v in table.items() if isinstance(v, Mapping) and k not in simple}
    settings = build(RuntimeSettings, table, "runtime", extra=frozenset(sub_tables) | {"backend_options"}, base=base)
    if "backend_options" in table:
        raise ConfigError("runtime.backend_options", "unknown setting; put backend options in [runtime.<backend>]")
    overrides: dict[str, Any] = {} if "data_dir" in table else {"data_dir": default_data_dir(env)}
    for var, key, tp in (
        ("REVAER_RUNTIME_BACKEND", "backend", str),
        ("REVAER_RUNTIME_PERSISTENCE", "persistence", bool),
        ("REVAER_DATA_DIR", "data_dir", Path),
    ):
        if var in env:
            overrides[key] = coerce(var, env[var], tp, base=Path.cwd())
    backend = overrides.get("backend", settings.backend).strip()
    if not backend:
        raise ConfigError("runtime.backend", "must not be empty; use 'none' for no store")
    overrides["backend"] = backend
    check_range("runtime.flush_interval_ms", settings.flush_interval_ms, *FLUSH_INTERVAL_MS, " ms")
    check_range("runtime.shutdown_deadline_s", settings.shutdown_deadline_s, *SHUTDOWN_DEADLINE_S, " s")
    return attrs.evolve(settings, backend_options={k: table[k] for k in sub_tables}, **overrides)


def _engine(table: Mapping[str, Any], env: Mapping[str, str], base: Path) -> EngineSettings:
    if not isinstance(table, Mapping):
        raise ConfigError("engine", "expected a table ([engine])")
    settings = build(EngineSettings, table, "engine", extra=frozenset({"watch"}), base=base)
    if "download_dir" not in table:
        settings = attrs.evolve(settings, download_dir=default_download_dir(env))
    watch = table.get("watch", {})
    if not isinstance(watch, Mapping):
        raise ConfigError("engine.watch", "expected a table ([engine.watch])")
    settings = attrs.evolve(settings, watch=build(WatchSettings, watch, "engine.watch", base=base))
    check_range("engine.watch.poll_interval_s", settings.watch.poll_interval_s, 0.05, 3600, " s")
    for n, root in enumerate(settings.allowed_save_roots):
        if not root.is_absolute():
            raise ConfigError(f"engine.allowed_save_roots[{n}]", f"must be an absolute path, got {str(root)!r}{_ROOTS}")
    parse_listen_interfaces("engine.listen_interfaces", settings.listen_interfaces)
    check_range("engine.resume_save_interval_s", settings.resume_save_interval_s, 0.1, 86400, " s")
    check_range("engine.alert_poll_ms", settings.alert_poll_ms, 1, 10_000, " ms")
    check_range("engine.status_interval_ms", settings.status_interval_ms, 10, 60_000, " ms")
    check_range("engine.connections_limit", settings.connections_limit, 2, 1_000_000)
    return settings


def _api(table: Mapping[str, Any], env: Mapping[str, str]) -> ApiSettings:
    if not isinstance(table, Mapping):
        raise ConfigError("api", "expected a table ([api])")
    settings = build(ApiSettings, table, "api")
    if "REVAER_API_TOKEN" in env:
        settings = attrs.evolve(settings, token=env["REVAER_API_TOKEN"])
    if "REVAER_API_READ_TOKEN" in env:
        settings = attrs.evolve(settings, read_token=env["REVAER_API_READ_TOKEN"])
    if not settings.host.strip():
        raise ConfigError("api.host", "must not be empty; e.g. '127.0.0.1'")
    check_range("api.port", settings.port, 0, 65535)
    check_range("api.max_upload_bytes", settings.max_upload_bytes, 1, MAX_UPLOAD_BYTES, " bytes")
    check_range("api.max_event_streams", settings.max_event_streams, 1, 100_000)
    if settings.token is not None and not settings.token.strip():
        key = "REVAER_API_TOKEN" if "REVAER_API_TOKEN" in env else "api.token"
        raise ConfigError(key, "must not be empty; leave it unset for no token")
    if settings.read_token is not None and not settings.read_token.strip():
        key = "REVAER_API_READ_TOKEN" if "REVAER_API_READ_TOKEN" in env else "api.read_token"
        raise ConfigError(key, "must not be empty; leave it unset for no read-only token")
    if settings.read_token is not None and settings.read_token == settings.token:
        raise ConfigError("api.read_token", "must differ from api.token, or a read-only token would also write")
    return settings


def octal_mode(key: str, text: str | None, maximum: int = 0o7777) -> int | None:
    """``text`` (``"0644"``, ``"0o644"``) as a permission number, or a ConfigError naming ``key``."""
    if text is None:
        return None
    digits = text.strip().lower().removeprefix("0o")
    if not digits or any(c not in "01234567" for c in digits) or int(digits, 8) > maximum:
        raise ConfigError(key, f"expected an octal mode up to {maximum:o} such as '0644', got {text!r}")
    return int(digits, 8)


def _fsops(table: Mapping[str, Any], base: Path) -> FsOpsSettings:
    if not isinstance(table, Mapping):
        raise ConfigError("fsops", "expected a table ([fsops])")
    settings = build(FsOpsSettings, table, "fsops", base=base)  # its roots are ABSOLUTE_ONLY: checked below
    if settings.enabled and settings.library_root is None:
        raise ConfigError("fsops.library_root", "required when fsops.enabled is true")
    for key, root in [("library_root", settings.library_root), *(("allowed_roots", r) for r in settings.allowed_roots)]:
        if root is not None and not root.is_absolute():
            raise ConfigError(f"fsops.{key}", f"must be an absolute path, got {str(root)!r}{_ROOTS}")
    octal_mode("fsops.chmod_file", settings.chmod_file)
    octal_mode("fsops.chmod_dir", settings.chmod_dir)
    octal_mode("fsops.umask", settings.umask, maximum=0o777)
    check_range("fsops.workers", settings.workers, 1, 64)
    return settings


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (else ``$REVAER_CONFIG``, else ``./revaer.toml`` if present).

    A file named explicitly must exist; the default one may be absent. ``env``
    (default ``os.environ``) supplies the overriding variables and
    ``XDG_DATA_HOME`` for the default data dir. Relative paths in the file are
    taken relative to the file's folder; relative paths in variables, relative
    to the current folder.
    """
    env = os.environ if env is None else env
    explicit = path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    source = explicit or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    document: dict[str, Any] = {}
    if source is not None:
        key = str(source)
        try:
            document = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(key, "settings file not found; pass an existing file or unset REVAER_CONFIG") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(key, f"cannot read settings file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(key, f"not valid TOML: {exc}") from None
    unknown = set(document) - {"runtime", "engine", "api", "fsops"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown section; known sections: api, engine, fsops, runtime")
    base = source.absolute().parent if source is not None else Path.cwd()  # read the folder once, now
    return Settings(
        runtime=_runtime(document.get("runtime", {}), env, base),
        engine=_engine(document.get("engine", {}), env, base),
        api=_api(document.get("api", {}), env),
        fsops=_fsops(document.get("fsops", {}), base),
        source=source,
    )
