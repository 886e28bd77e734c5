"""Settings: a TOML file, overridden by environment variables, checked key by key.

Every problem is a :class:`ConfigError` naming the key (``runtime.backend``)
or the variable (``REVAER_RUNTIME_PERSISTENCE``) and what would be accepted.
"""

from __future__ import annotations

import difflib
import enum
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
from attrs import AttrsInstance

from revaer_core.errors import ConfigError

T = TypeVar("T", bound=AttrsInstance)

CONFIG_ENV = "REVAER_CONFIG"
DEFAULT_CONFIG = Path("revaer.toml")


class Durability(enum.StrEnum):
    """When an event's write reaches the store."""

    BATCHED = "batched"  #: write-behind: the handler returns at once, the writer flushes in batches
    SYNC = "sync"  #: the handler waits for its own write (one write per event)


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/revaer``, or ``~/.local/share/revaer``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "revaer"


@attrs.frozen
class RuntimeSettings:
    """The ``[runtime]`` table: which store, and how the runtime writes to it."""

    backend: str = "none"  #: none, memory, postgres, or any installed plugin's name
    persistence: bool = True  #: the master switch; false means no store whatever ``backend`` says
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
        return self.backend_options.get(backend, {})


@attrs.frozen
class Settings:
    """All of Revaer's settings."""

    runtime: RuntimeSettings = attrs.field(factory=RuntimeSettings)
    source: Path | None = None  #: the file they were read from, if any


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _describe(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}.get(
        tp, str(tp)
    )


def coerce(key: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp``, or a ConfigError naming ``key``. Strings from the environment are parsed."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else coerce(key, value, inner)
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
            return Path(value).expanduser()
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            pass
    raise ConfigError(key, f"expected {_describe(tp)}, got {value!r}")


def build(cls: type[T], table: Mapping[str, Any], prefix: str, *, extra: frozenset[str] = frozenset()) -> T:
    """An instance of the attrs class ``cls`` from a TOML table, every key checked.

    Keys in ``extra`` are left for the caller (sub-tables, say).
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
        values[key] = coerce(f"{prefix}.{key}", value, hints[key])
    return cls(**values)


def _runtime(table: Mapping[str, Any], env: Mapping[str, str]) -> RuntimeSettings:
    if not isinstance(table, Mapping):
        raise ConfigError("runtime", "expected a table ([runtime])")
    simple = set(attrs.fields_dict(RuntimeSettings)) - {"backend_options"}
    sub_tables = {k for k, v in table.items() if isinstance(v, Mapping) and k not in simple}
    settings = build(RuntimeSettings, table, "runtime", extra=frozenset(sub_tables) | {"backend_options"})
    if "backend_options" in table:
        raise ConfigError("runtime.backend_options", "unknown setting; put backend options in [runtime.<backend>]")
    overrides: dict[str, Any] = {}
    for var, key, tp in (
        ("REVAER_RUNTIME_BACKEND", "backend", str),
        ("REVAER_RUNTIME_PERSISTENCE", "persistence", bool),
        ("REVAER_DATA_DIR", "data_dir", Path),
    ):
        if var in env:
            overrides[key] = coerce(var, env[var], tp)
    backend = overrides.get("backend", settings.backend).strip()
    if not backend:
        raise ConfigError("runtime.backend", "must not be empty; use 'none' for no store")
    overrides["backend"] = backend
    return attrs.evolve(settings, backend_options={k: table[k] for k in sub_tables}, **overrides)


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (else ``$REVAER_CONFIG``, else ``./revaer.toml`` if present).

    A file named explicitly must exist; the default one may be absent.
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
    unknown = set(document) - {"runtime"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown section; known sections: runtime")
    return Settings(runtime=_runtime(document.get("runtime", {}), env), source=source)
