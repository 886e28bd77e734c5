"""Retry delays shared by everything that retries a store write."""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class Backoff:
    """Exponential delays with jitter: ``initial * 2**(failures-1)`` capped at ``maximum``, times [0.5, 1).

    Jitter keeps writers that failed together (the store went away under all
    of them) from retrying in lockstep.
    """

    initial: float = 0.2
    maximum: float = 10.0

    def delay(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0.5, 1.0) * min(self.maximum, self.initial * 2.0 ** min(max(failures - 1, 0), 32))
