"""What a history says of how training ran: :class:`TrainingMeta`, the part of
:class:`~fedunlearn.history.base.UpdateHistory` that holds the training strategy's own
account (its name, sampling, aggregation, app config and clients) as plain JSON."""

from __future__ import annotations

from typing import Any

from fedunlearn.history.store import HistoryStore

__all__ = ["TrainingMeta"]


class TrainingMeta(HistoryStore):
    """The ``meta`` of a history and what methods read from it."""

    meta: dict[str, Any]
    """How training ran (strategy, sampling, aggregation, config, client ids): plain
    JSON data written by the training strategy, read by unlearning methods."""

    def describe_training(self, **items: Any) -> None:
        """Record how training ran (JSON-serialisable values) in :attr:`meta`."""
        self.meta.update(items)
        self._persist()

    @property
    def client_nodes(self) -> dict[int, int]:
        """The Flower node each client trained on (as training saw them)."""
        return {int(c): int(e["node"]) for c, e in self.meta.get("clients", {}).items()}

    @property
    def client_examples(self) -> dict[int, int]:
        """Each client's example count (as it last reported it in training)."""
        return {
            int(c): int(e.get("num_examples", 0)) for c, e in self.meta.get("clients", {}).items()
        }

    @property
    def aggregation(self) -> str:
        """``"weighted-mean"`` when every round's global model moved by the weighted mean
        of the client updates (what calibration, replay and subtraction assume), else
        what the training strategy did instead; ``"unknown"`` when not recorded."""
        return str(self.meta.get("aggregation", "unknown"))
