"""Who was sampled in which round: :class:`ParticipationLog`, the part of an
:class:`~fedunlearn.history.base.UpdateHistory` kept for *every* round (kept or not):
it is cheap, and methods such as exact rollback need to know when a client first took
part."""

from __future__ import annotations

from collections.abc import Sequence

from fedunlearn.history.store import HistoryStore

__all__ = ["ParticipationLog"]


class ParticipationLog(HistoryStore):
    """The clients sampled in each recorded round."""

    _participation: dict[int, tuple[int, ...]]

    def record_participation(self, server_round: int, sampled: Sequence[int]) -> None:
        """Note which clients were sampled in a round (every round, kept or not)."""
        self._participation[server_round] = tuple(sorted(int(c) for c in sampled))
        self._persist()

    @property
    def participation(self) -> dict[int, tuple[int, ...]]:
        """Clients sampled in each recorded round (all rounds, kept or not)."""
        return dict(sorted(self._participation.items()))

    @property
    def num_rounds(self) -> int:
        """Number of rounds recorded (kept or not)."""
        return max(self._participation, default=0)

    @property
    def clients(self) -> list[int]:
        """Every client that took part in some round."""
        return sorted({c for s in self._participation.values() for c in s})

    def first_participation(self, client: int) -> int | None:
        """The first round ``client`` was sampled in, or None."""
        return next((r for r, s in sorted(self._participation.items()) if client in s), None)
