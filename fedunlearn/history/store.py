"""Where a history's rounds live: :class:`HistoryStore`, the few hooks a store
implements (memory: :mod:`.memory`; a folder: :mod:`.disk`). Everything else a history
does is built on them in :class:`~fedunlearn.history.base.UpdateHistory`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection

from fedunlearn.history.kept import KeptRound
from fedunlearn.learning.arrays import Arrays

__all__ = ["HistoryStore"]


class HistoryStore(ABC):
    """The storage hooks of an update history."""

    @abstractmethod
    def _store_round(self, kept: KeptRound) -> None:
        """Keep the arrays of a kept round."""

    @abstractmethod
    def _load_round(self, server_round: int) -> KeptRound:
        """Return a kept round (``server_round`` is known to be kept)."""

    @abstractmethod
    def _kept_ids(self) -> Collection[int]:
        """The kept rounds, in any order."""

    @abstractmethod
    def _round_bytes(self, server_round: int) -> int:
        """Bytes of array data in a kept round (global model and updates)."""

    @abstractmethod
    def _global_bytes(self, server_round: int) -> int:
        """Bytes of a kept round's global model."""

    @abstractmethod
    def _persist(self) -> None:
        """Make the metadata (participation, kept rounds) durable."""

    @abstractmethod
    def _store_final(self, arrays: Arrays) -> None:
        """Keep the final model (it is also held in ``self._final``)."""

    @abstractmethod
    def _load_final(self) -> Arrays | None:
        """The final model kept by the store, or None."""
