"""Progress writes as heap-only-tuple (HOT) updates: no index on a column they change, room in each page.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Every flush rewrites the progress of every downloading torrent, and
``last_updated`` with it. While an index covered ``last_updated``, none of
those updates could stay on its page: each wrote a new entry into all five
indexes of ``torrents`` and left the table and the indexes to bloat. So:

- ``torrents_last_updated_idx`` goes. The listing sorted by last update reads
  the table and keeps the first page's rows (a top-N sort) instead: a scan of
  what hydration reads anyway, in exchange for an index every flush rewrote.
- ``fillfactor`` 50 leaves half of each new page free. A flush updates every
  row of a page at once, so each needs room for a second version of all of its
  rows (the versions of the flush before are pruned by then). Pages written
  before this revision are full; their rows move to roomier pages the first
  time they are updated, and stay there.
- The ``updated_at`` trigger runs only when a statement does not set
  ``updated_at`` itself: the progress and resume-data updates set it to
  ``now()``, as the trigger would, without a PL/pgSQL call per row.
"""

from __future__ import annotations

from alembic import op

from revaer_runtime_pg.migrate import target_schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FILLFACTOR = 50


def _touch_trigger(q: str, when: str) -> None:
    op.execute(f"DROP TRIGGER torrents_touch_updated_at ON {q}.torrents")
    op.execute(
        f"CREATE TRIGGER torrents_touch_updated_at BEFORE UPDATE ON {q}.torrents "
        f"FOR EACH ROW {when}EXECUTE FUNCTION {q}.touch_updated_at()"
    )


def upgrade() -> None:
    schema = target_schema()
    q = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    op.drop_index("torrents_last_updated_idx", table_name="torrents", schema=schema)
    op.execute(f"ALTER TABLE {q}.torrents SET (fillfactor = {FILLFACTOR})")
    _touch_trigger(q, "WHEN (OLD.updated_at IS NOT DISTINCT FROM NEW.updated_at) ")


def downgrade() -> None:
    schema = target_schema()
    q = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    _touch_trigger(q, "")
    op.execute(f"ALTER TABLE {q}.torrents RESET (fillfactor)")
    op.create_index("torrents_last_updated_idx", "torrents", ["last_updated", "id"], schema=schema)
