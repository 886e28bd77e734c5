"""The TorrentOrchestrator: engine events in, a catalog of torrent statuses out, persisted."""

from revaer_core.backoff import Backoff
from revaer_core.orchestrator.catalog import Catalog
from revaer_core.orchestrator.orchestrator import ReconcileReport, TorrentOrchestrator
from revaer_core.orchestrator.writer import DrainReport, StoreWriter

__all__ = ["Backoff", "Catalog", "DrainReport", "ReconcileReport", "StoreWriter", "TorrentOrchestrator"]
