"""The ``with`` form shared by start-and-close services: the API server, the loopback seeder, a test's private cluster.

Exported from ``revaer_core``, so a plugin's own services (``revaer_runtime_pg.testing.PrivateCluster``) use it too.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartedInWith:
    """``with x:`` starts ``x`` and closes it on the way out, whatever the block raised.

    A subclass gives :meth:`start` and :meth:`close`; ``start`` may take optional arguments and return what it likes.
    """

    def start(self) -> object:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
