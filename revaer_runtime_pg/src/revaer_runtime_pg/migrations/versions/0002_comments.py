"""Describe every table and the less obvious columns, for operators reading the schema in psql.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-15
"""

from __future__ import annotations

from alembic import op

from revaer_runtime_pg.migrate import target_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = {
    "torrents": "Revaer torrent statuses, one row per torrent; written in batches by the daemon",
    "fs_jobs": "The current FsOps job of each torrent (removed with its torrent)",
    "fs_job_history": "Every FsOps job transition, append-only: the audit trail of each attempt",
}
COLUMNS = {
    ("torrents", "files"): "File list as JSON objects; NULL while metadata is unknown, [] for no files",
    ("torrents", "resume_data"): "Engine resume data (opaque bytes); never read by catalog hydration",
    ("torrents", "last_updated"): "When Revaer last changed the status (updated_at is when the row changed)",
    ("fs_jobs", "transitions"): "Number of history rows: the seq of the latest transition",
}


def upgrade() -> None:
    schema = target_schema()
    for table, text in TABLES.items():
        op.create_table_comment(table, text, schema=schema)
    for (table, column), text in COLUMNS.items():
        op.alter_column(table, column, comment=text, schema=schema)


def downgrade() -> None:
    schema = target_schema()
    for (table, column), text in COLUMNS.items():
        op.alter_column(table, column, comment=None, existing_comment=text, schema=schema)
    for table, text in TABLES.items():
        op.drop_table_comment(table, existing_comment=text, schema=schema)
