"""Torrent statuses, FsOps jobs and their append-only history.

Revision ID: 0001
Revises:
Create Date: 2026-03-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from revaer_runtime_pg.migrate import target_schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ENUMS = {
    "torrent_state": ("queued", "fetching_metadata", "downloading", "seeding", "completed", "failed", "stopped"),
    "fs_job_status": ("pending", "moving", "moved", "failed", "skipped"),
    "transfer_mode": ("copy", "move", "hardlink"),
    "job_event": ("retry", "started", "completed", "failed", "skipped"),
}


def _enum(name: str, schema: str) -> pg.ENUM:
    return pg.ENUM(*ENUMS[name], name=name, schema=schema, create_type=False)


def _times() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    schema = target_schema()
    q = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    for name, labels in ENUMS.items():
        pg.ENUM(*labels, name=name, schema=schema).create(op.get_bind())

    op.create_table(
        "torrents",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("state", _enum("torrent_state", schema), nullable=False),
        sa.Column("failure", sa.Text),
        sa.Column("downloaded", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("eta_seconds", sa.BigInteger),
        sa.Column("download_bps", sa.BigInteger, nullable=False),
        sa.Column("upload_bps", sa.BigInteger, nullable=False),
        sa.Column("ratio", sa.Float(precision=53), nullable=False),
        sa.Column("files", pg.JSONB),
        sa.Column("library_path", sa.Text),
        sa.Column("download_dir", sa.Text),
        sa.Column("sequential", sa.Boolean, nullable=False),
        sa.Column("added_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("completed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("last_updated", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("resume_data", sa.LargeBinary),
        *_times(),
        schema=schema,
    )
    # Listing: filter by state; keyset order by (added_at, id), (last_updated, id) and (name, id).
    op.create_index("torrents_state_idx", "torrents", ["state"], schema=schema)
    op.create_index("torrents_added_idx", "torrents", ["added_at", "id"], schema=schema)
    op.create_index("torrents_last_updated_idx", "torrents", ["last_updated", "id"], schema=schema)
    op.create_index(
        "torrents_name_idx",
        "torrents",
        [sa.text("(coalesce(name, '') COLLATE \"C\")"), "id"],
        schema=schema,
    )

    op.create_table(
        "fs_jobs",
        sa.Column(
            "torrent_id",
            sa.Uuid,
            sa.ForeignKey(f"{schema}.torrents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", _enum("fs_job_status", schema), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job_created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("job_updated_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("destination", sa.Text),
        sa.Column("transfer_mode", _enum("transfer_mode", schema)),
        sa.Column("last_error", sa.Text),
        sa.Column("transitions", sa.Integer, nullable=False),
        *_times(),
        schema=schema,
    )
    op.create_index("fs_jobs_status_idx", "fs_jobs", ["status"], schema=schema)
    op.create_index("fs_jobs_created_idx", "fs_jobs", ["job_created_at", "torrent_id"], schema=schema)

    op.create_table(
        "fs_job_history",
        sa.Column(
            "torrent_id",
            sa.Uuid,
            sa.ForeignKey(f"{schema}.fs_jobs.torrent_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("event", _enum("job_event", schema), nullable=False),
        sa.Column("status", _enum("fs_job_status", schema), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("destination", sa.Text),
        sa.Column("transfer_mode", _enum("transfer_mode", schema)),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )

    # updated_at follows every UPDATE; history rows are never changed once written.
    op.execute(
        f"CREATE FUNCTION {q}.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    op.execute(
        f"CREATE FUNCTION {q}.refuse_history_update() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'fs_job_history is append-only'; END $$"
    )
    for table in ("torrents", "fs_jobs"):
        op.execute(
            f"CREATE TRIGGER {table}_touch_updated_at BEFORE UPDATE ON {q}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {q}.touch_updated_at()"
        )
    op.execute(
        f"CREATE TRIGGER fs_job_history_append_only BEFORE UPDATE ON {q}.fs_job_history "
        f"FOR EACH ROW EXECUTE FUNCTION {q}.refuse_history_update()"
    )


def downgrade() -> None:
    schema = target_schema()
    q = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    op.drop_table("fs_job_history", schema=schema)
    op.drop_table("fs_jobs", schema=schema)
    op.drop_table("torrents", schema=schema)
    op.execute(f"DROP FUNCTION {q}.refuse_history_update()")
    op.execute(f"DROP FUNCTION {q}.touch_updated_at()")
    for name in reversed(ENUMS):
        pg.ENUM(name=name, schema=schema).drop(op.get_bind())
