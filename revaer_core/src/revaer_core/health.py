"""The runtime's health board; the store's own types are re-exported from :mod:`revaer_core.storetypes`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from revaer_core.events import HealthChanged
from revaer_core.storetypes import Capability, StoreHealth, StoreRole

__all__ = ["RUNTIME_STORE", "Capability", "HealthBoard", "StoreHealth", "StoreRole"]


#: The health component a failing runtime store degrades.
RUNTIME_STORE = "runtime_store"
#: The health component that fails while this daemon's store writes are fenced (another took the writer lock).
WRITER_LOCK = "writer_lock"


class HealthBoard:
    """The runtime's degraded components; every change is published as ``HealthChanged``.

    Several reporters may speak for one component (the torrent writer and
    FsOps' job writes both for ``runtime_store``): it stays degraded until every
    reporter that degraded it has recovered. Thread-safe.
    """

    def __init__(self, publish: Callable[[HealthChanged], object] | None = None) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[str, dict[str, str]] = {}  #: component -> reporter -> reason
        self._publish = publish
        self._failed: dict[str, str] = {}  #: component -> why it cannot go on (see :meth:`fail`)
        #: told of every :meth:`fail`: the daemon, which stops (or, for :data:`WRITER_LOCK`, takes the lock back)
        self.on_fault: Callable[[str, str], None] | None = None

    @property
    def degraded(self) -> Mapping[str, str]:
        """Degraded components and why, as of now."""
        with self._lock:
            return {c: "; ".join(r.values()) for c, r in self._reasons.items()}

    @property
    def ok(self) -> bool:
        with self._lock:
            return not self._reasons and not self._failed

    @property
    def failed(self) -> Mapping[str, str]:
        """Components that cannot go on, and why: health is ``failed`` while any is listed."""
        with self._lock:
            return dict(self._failed)

    def fail(self, component: str, reason: str) -> None:
        """``component`` cannot go on: health turns ``failed`` and :attr:`on_fault` is told (the first time)."""
        with self._lock:
            first = component not in self._failed
            self._failed[component] = reason
        if first and self._publish is not None:
            self._publish(HealthChanged(degraded=frozenset(self.degraded) | frozenset(self.failed)))
        listener = self.on_fault
        if first and listener is not None:
            listener(component, reason)

    def clear(self, component: str) -> None:
        """``component`` goes on again (a writer lock taken back)."""
        with self._lock:
            if self._failed.pop(component, None) is None:
                return
        if self._publish is not None:
            self._publish(HealthChanged(degraded=frozenset(self.degraded) | frozenset(self.failed)))

    def degrade(self, component: str, reason: str, *, source: str = "") -> None:
        """Mark ``component`` degraded on behalf of ``source``."""
        with self._lock:
            changed = component not in self._reasons
            self._reasons.setdefault(component, {})[source] = reason
            snapshot = frozenset(self._reasons)
        if changed and self._publish is not None:
            self._publish(HealthChanged(degraded=snapshot))

    def recover(self, component: str, *, source: str = "") -> None:
        """``source`` sees ``component`` healthy again; it recovers once no reporter is left."""
        with self._lock:
            reporters = self._reasons.get(component)
            if reporters is None or reporters.pop(source, None) is None or reporters:
                return
            del self._reasons[component]
            snapshot = frozenset(self._reasons)
        if self._publish is not None:
            self._publish(HealthChanged(degraded=snapshot))
