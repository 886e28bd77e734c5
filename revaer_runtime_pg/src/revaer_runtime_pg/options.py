"""The ``[runtime.postgres]`` settings table, checked key by key.

Parsing goes through :func:`revaer_core.parse_table`, so an unknown or
ill-typed key is a :class:`revaer_core.ConfigError` naming
``runtime.postgres.<key>``, exactly like every other Revaer setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from revaer_core import ConfigError, parse_table

PREFIX = "runtime.postgres"
DSN_ENV = "REVAER_DATABASE_URL"
DEFAULT_SCHEMA = "revaer_runtime"

# Unquoted lower-case identifiers only: the schema name is spliced into DDL (quoted), never a value.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@attrs.frozen
class PgOptions:
    """What an operator may set for the PostgreSQL store.

    ``dsn`` is left out of ``repr`` so that printing options never shows a password.
    """

    #: libpq URL or keyword string; ``REVAER_DATABASE_URL`` wins; none means embedded mode
    dsn: str | None = attrs.field(default=None, repr=False)
    schema: str = DEFAULT_SCHEMA  #: the PostgreSQL schema holding every table, type and the Alembic version
    pool_size: int = 5  #: connections kept open for the store's hooks
    statement_timeout_ms: int = 30_000  #: per statement; 0 turns the limit off
    #: also upgrade a schema that is behind on startup (a fresh, empty schema is always created)
    auto_migrate: bool = False
    connect_timeout_s: int = 10  #: how long a connection attempt may take before it fails


def parse_options(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> PgOptions:
    """``options`` (the TOML table) as :class:`PgOptions`, with ``REVAER_DATABASE_URL`` applied."""
    env = os.environ if env is None else env
    parsed = parse_table(PgOptions, options, PREFIX)
    if DSN_ENV in env:
        if not env[DSN_ENV].strip():
            raise ConfigError(DSN_ENV, "is set but blank; unset it for the embedded server, or set a postgresql:// URL")
        parsed = attrs.evolve(parsed, dsn=env[DSN_ENV].strip())
    if parsed.dsn is not None and not parsed.dsn.strip():
        raise ConfigError(f"{PREFIX}.dsn", "must not be empty; leave it unset for the embedded server")
    if not _SCHEMA_NAME.fullmatch(parsed.schema):
        raise ConfigError(
            f"{PREFIX}.schema",
            f"expected a lower-case identifier (letters, digits, underscores; at most 63), got {parsed.schema!r}",
        )
    if parsed.schema.startswith("pg_") or parsed.schema in {"public", "information_schema"}:
        raise ConfigError(f"{PREFIX}.schema", f"{parsed.schema!r} is not ours to use; pick a schema of its own")
    if not 1 <= parsed.pool_size <= 100:
        raise ConfigError(f"{PREFIX}.pool_size", f"must be between 1 and 100, got {parsed.pool_size}")
    if parsed.statement_timeout_ms < 0:
        raise ConfigError(f"{PREFIX}.statement_timeout_ms", f"must be >= 0, got {parsed.statement_timeout_ms}")
    if parsed.connect_timeout_s < 1:
        raise ConfigError(f"{PREFIX}.connect_timeout_s", f"must be >= 1, got {parsed.connect_timeout_s}")
    return parsed
