"""The writer fence: one row whose epoch every daemon write checks inside its own transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The advisory lock says who may write, but a daemon only learns that it lost
the lock when it next looks, and a write already on its way would land. So a
daemon that takes the lock bumps ``epoch`` and remembers the value; each of
its write transactions first reads the row ``FOR SHARE`` and writes nothing
unless the epoch is still its own. A new holder's bump waits for the writes in
flight to commit, and every later write of the old holder finds it fenced.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from revaer_runtime_pg.migrate import target_schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COMMENTS = {
    "singleton": "Always true: the table holds exactly one row",
    "epoch": "Bumped by each daemon that takes the writer lock; its writes land only while it is unchanged",
    "holder": "Who bumped it last, as pg_stat_activity names that daemon (revaer daemon <host>:<pid>)",
    "taken_at": "When the writer lock was last taken",
}


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "writer_fence",
        sa.Column("singleton", sa.Boolean, primary_key=True, server_default=sa.true(), comment=COMMENTS["singleton"]),
        sa.Column("epoch", sa.BigInteger, nullable=False, server_default=sa.text("0"), comment=COMMENTS["epoch"]),
        sa.Column("holder", sa.Text, comment=COMMENTS["holder"]),
        sa.Column(
            "taken_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            comment=COMMENTS["taken_at"],
        ),
        sa.CheckConstraint("singleton", name="writer_fence_singleton_check"),
        comment="The writer lock's fencing epoch: one row, checked inside every daemon write transaction",
        schema=schema,
    )
    op.execute(
        sa.text(
            f"INSERT INTO {op.get_bind().dialect.identifier_preparer.quote_schema(schema)}.writer_fence DEFAULT VALUES"
        )
    )


def downgrade() -> None:
    op.drop_table("writer_fence", schema=target_schema())
