"""Runtime counters and gauges, rendered in the Prometheus text format.

Deliberately small: the runtime needs a handful of series and no labels
beyond a fixed set, so a dependency on a metrics library buys nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import attrs


@attrs.define
class _Series:
    name: str
    kind: str  #: "counter" or "gauge"
    help: str
    value: float = 0.0
    sampler: Callable[[], Iterable[tuple[dict[str, str], float]]] | None = None


class Metrics:
    """The runtime's metrics; every method is thread-safe and cheap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}
        for name, kind, text in (
            ("revaer_events_handled_total", "counter", "Events the orchestrator folded into the catalog."),
            ("revaer_rows_flushed_total", "counter", "Torrent rows written to or removed from the store."),
            ("revaer_flushes_total", "counter", "Batches the store writer flushed."),
            ("revaer_flush_seconds_total", "counter", "Time spent in store flushes, in seconds."),
            ("revaer_flush_seconds_last", "gauge", "Duration of the last store flush, in seconds."),
            ("revaer_store_errors_total", "counter", "Store writes that failed and were kept for retry."),
        ):
            self._series[name] = _Series(name, kind, text)

    def inc(self, name: str, amount: float = 1.0) -> None:
        with self._lock:
            self._series[name].value += amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._series[name].value = value

    def value(self, name: str) -> float:
        with self._lock:
            return self._series[name].value

    def register_sampled(
        self, name: str, help_text: str, sampler: Callable[[], Iterable[tuple[dict[str, str], float]]]
    ) -> None:
        """A gauge read when rendered, e.g. FsOps jobs by status (labels, value) pairs."""
        with self._lock:
            self._series[name] = _Series(name, "gauge", help_text, sampler=sampler)

    def render(self) -> str:
        """All series in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            series = list(self._series.values())
        lines: list[str] = []
        for s in series:
            lines += [f"# HELP {s.name} {s.help}", f"# TYPE {s.name} {s.kind}"]
            if s.sampler is None:
                lines.append(f"{s.name} {_number(s.value)}")
                continue
            for labels, value in s.sampler():
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                lines.append(f"{s.name}{{{rendered}}} {_number(value)}" if rendered else f"{s.name} {_number(value)}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
