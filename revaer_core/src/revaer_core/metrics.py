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
    """The runtime's metrics; every method is thread-safe and cheap.

    A series exists once the part that moves it declares it (the orchestrator,
    its writer, the API's job gauge), so ``revaer api`` without a daemon shows
    the job gauge and no counters frozen at zero. Names end in their unit
    (``_seconds``), counters then in ``_total``, as Prometheus names them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

    def declare(self, name: str, kind: str, help_text: str) -> None:
        """Add a ``"counter"`` or ``"gauge"`` at zero; one already declared keeps its value."""
        with self._lock:
            self._series.setdefault(name, _Series(name, kind, help_text))

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
