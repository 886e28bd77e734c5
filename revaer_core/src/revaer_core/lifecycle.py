"""The ``with`` form shared by start-and-close services: the API server, the loopback seeder, a test's private cluster.

Exported from ``revaer_core``, so a plugin's own services (``revaer_runtime_pg.testing.PrivateCluster``) use it too.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartedInWith:
    """``with x:`` starts ``x`` and closes it on the way out, whatever the block raised.

    A start that fails is closed too, so what it set up before failing (a
    thread, a bound socket, a cluster's folder) goes with it.

    A subclass gives :meth:`start` and :meth:`close`; ``start`` may take optional arguments and return what it likes.
    """

    def start(self) -> object:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
