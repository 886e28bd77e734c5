"""Alembic scripts of the PostgreSQL store; run them through :mod:`revaer_runtime_pg.migrate`."""
