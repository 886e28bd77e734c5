"""PostgreSQL runtime store for Revaer: SQLAlchemy Core, psycopg 3 and Alembic migrations.

Select it with ``runtime.backend = "postgres"`` (or ``REVAER_RUNTIME_BACKEND=postgres``);
settings live in ``[runtime.postgres]`` (see :class:`revaer_runtime_pg.options.PgOptions`).
"""

from revaer_runtime_pg.store import PostgresStore

__all__ = ["PostgresStore"]
