"""In-memory runtime store for Revaer (entry point ``memory`` in ``revaer.runtime``)."""

from revaer_runtime_memory.store import MemoryStore

__all__ = ["MemoryStore"]
