"""Bringing another client's torrents in: qBittorrent's ``BT_backup`` and Transmission's config folder.

Each reader turns a folder into an :class:`~revaer_core.importers.plan.ImportPlan`
(what would be imported, what is lost, what is skipped and why) without
changing anything; :mod:`revaer_core.importers.delivery` then adds every
torrent through the same durable add as any other, with libtorrent resume
data made from the client's own record of its progress, so nothing is rechecked.

Reading needs libtorrent (the ``libtorrent`` extra), which also reads and
writes the resume data.
"""

from __future__ import annotations

from revaer_core.importers.plan import Client, FolderRefused, ImportPlan, Outcome, Planned, Skipped

__all__ = ["Client", "FolderRefused", "ImportPlan", "Outcome", "Planned", "Skipped"]
