"""Alembic environment: runs on the connection :mod:`revaer_runtime_pg.migrate` hands over.

The target schema comes in ``config.attributes["schema"]``; the version table
lives in that schema too, so the store never touches ``public``. Offline (SQL
script) mode is not offered: migrations run against a live server under an
advisory lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from revaer_runtime_pg.migrate import ensure_schema
from revaer_runtime_pg.schema import tables

config = context.config
schema: str = config.attributes["schema"]
connection: sa.Connection = config.attributes["connection"]

ensure_schema(connection, schema)  # the version table lives in it, so it comes first

context.configure(
    connection=connection,
    target_metadata=tables(schema).metadata,
    version_table_schema=schema,
    include_schemas=True,
    include_name=lambda name, type_, parent: type_ != "schema" or name == schema,
)

with context.begin_transaction():
    context.run_migrations()
