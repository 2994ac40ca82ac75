"""An update history held in memory: :class:`MemoryHistory`."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from fedunlearn.history.base import UpdateHistory
from fedunlearn.history.kept import KeptRound
from fedunlearn.learning.arrays import Arrays, nbytes


class MemoryHistory(UpdateHistory):
    """Client updates kept every ``delta_t`` rounds, in memory.

    Nothing is written anywhere; copy it to disk with :meth:`save`. Parameters as
    :class:`~fedunlearn.history.base.UpdateHistory`.
    """

    def __init__(
        self,
        delta_t: int = 1,
        parameter_keys: Sequence[str] | None = None,
        precision: str = "full",
    ) -> None:
        super().__init__(delta_t, parameter_keys, precision)
        self._rounds: dict[int, KeptRound] = {}

    def _store_round(self, kept: KeptRound) -> None:
        self._rounds[kept.round] = kept

    def _load_round(self, server_round: int) -> KeptRound:
        return self._rounds[server_round]

    def _kept_ids(self) -> Collection[int]:
        return self._rounds.keys()

    def _round_bytes(self, server_round: int) -> int:
        return self._rounds[server_round].nbytes

    def _global_bytes(self, server_round: int) -> int:
        return nbytes(self._rounds[server_round].global_model)

    def _persist(self) -> None:
        """Nothing to do: memory is the store."""

    def _store_final(self, arrays: Arrays) -> None:
        """Nothing to do: the base class holds the final model."""

    def _load_final(self) -> Arrays | None:
        return None
