"""The user's choices on each torrent, and each torrent's source (what re-adds it after a crash).

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-20

Every new ``torrents`` column is nullable or has a constant default, so
PostgreSQL adds it without rewriting the table: an upgrade of a large store
takes no longer than of an empty one, and existing rows read as a torrent
nobody has paused, labelled or limited. Sources get a table of their own:
hydration reads every ``torrents`` row, and a few MiB of metainfo per row
would make it read far more pages than it needs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from revaer_runtime_pg.migrate import target_schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Frozen here as this revision creates it, whatever ``AddedVia`` holds later (a new label is a new revision).
ADDED_VIA = ("api", "cli", "watch", "import")


def _torrent_columns() -> list[sa.Column[Any]]:
    """The columns this revision adds to ``torrents``; a NOT NULL one's default is what older rows read as."""
    return [
        sa.Column(
            "info_hash",
            sa.Text,
            comment="Info-hash in lower-case hex: the v1 SHA-1 where the torrent has one, else the v2 SHA-256; "
            "NULL until known",
        ),
        sa.Column(
            "paused",
            sa.Boolean,
            nullable=False,
            server_default=sa.false(),
            comment="Paused by the user: the torrent stays paused across restarts until resumed",
        ),
        sa.Column(
            "labels",
            pg.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment="The user's labels, sorted and without repeats",
        ),
        sa.Column(
            "download_limit", sa.BigInteger, comment="Download limit in bytes/s chosen by the user; NULL for none"
        ),
        sa.Column("upload_limit", sa.BigInteger, comment="Upload limit in bytes/s chosen by the user; NULL for none"),
    ]


LIMIT_CHECKS = {"download_limit": "torrents_download_limit_check", "upload_limit": "torrents_upload_limit_check"}

SOURCES_COMMENT = (
    "The source of each torrent (a .torrent's bytes or a magnet link): what the engine re-adds it from when "
    "it has no resume data; removed with its torrent, never read by catalog hydration"
)
SOURCE_COLUMNS = {
    "metainfo": "The bencoded .torrent as added, byte for byte; NULL when the torrent came from a magnet link",
    "magnet": "The magnet link as added; NULL when the torrent came from a .torrent",
    "file_priorities": "Priorities (0 skip .. 7 top) asked for at the add, by file index; later files get 4",
    "added_via": "How the torrent came in: the API, the CLI, the watch folder or an import",
    "added_at": "When the torrent was added (created_at is when this row was first written)",
}


def upgrade() -> None:
    schema = target_schema()
    q = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    for column in _torrent_columns():
        op.add_column("torrents", column, schema=schema)
    for limit, constraint in LIMIT_CHECKS.items():
        op.create_check_constraint(constraint, "torrents", f"{limit} >= 0", schema=schema)

    pg.ENUM(*ADDED_VIA, name="added_via", schema=schema).create(op.get_bind())
    op.create_table(
        "torrent_sources",
        sa.Column(
            "torrent_id",
            sa.Uuid,
            sa.ForeignKey(f"{schema}.torrents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("metainfo", sa.LargeBinary, comment=SOURCE_COLUMNS["metainfo"]),
        sa.Column("magnet", sa.Text, comment=SOURCE_COLUMNS["magnet"]),
        sa.Column(
            "file_priorities",
            pg.ARRAY(sa.SmallInteger),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment=SOURCE_COLUMNS["file_priorities"],
        ),
        sa.Column(
            "added_via",
            pg.ENUM(*ADDED_VIA, name="added_via", schema=schema, create_type=False),
            nullable=False,
            comment=SOURCE_COLUMNS["added_via"],
        ),
        sa.Column("added_at", sa.TIMESTAMP(timezone=True), nullable=False, comment=SOURCE_COLUMNS["added_at"]),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("(metainfo IS NULL) <> (magnet IS NULL)", name="torrent_sources_one_source_check"),
        sa.CheckConstraint(
            "file_priorities <@ ARRAY[0, 1, 2, 3, 4, 5, 6, 7]::smallint[]", name="torrent_sources_priorities_check"
        ),
        comment=SOURCES_COMMENT,
        schema=schema,
    )
    # A second save replaces the source: updated_at follows, as on torrents and fs_jobs (function from 0001).
    op.execute(
        f"CREATE TRIGGER torrent_sources_touch_updated_at BEFORE UPDATE ON {q}.torrent_sources "
        f"FOR EACH ROW EXECUTE FUNCTION {q}.touch_updated_at()"
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("torrent_sources", schema=schema)  # its trigger and comments go with it
    pg.ENUM(name="added_via", schema=schema).drop(op.get_bind())
    for constraint in LIMIT_CHECKS.values():
        op.drop_constraint(constraint, "torrents", type_="check", schema=schema)
    for column in reversed(_torrent_columns()):
        op.drop_column("torrents", column.name, schema=schema)
