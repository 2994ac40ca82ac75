"""The server's memory of training: the ``UpdateHistory`` interface.

In federated unlearning the server never sees client data; all it can unlearn from is
what it kept while training. For every kept round (1, 1 + delta_t, 1 + 2 delta_t, ...)
the history stores:

* the global model the round *started* from;
* each participating client's update: its weights after local training minus that
  starting global model (not minus the aggregated model, a known mistake);
* each client's example count;
* the clients sampled in the round.

Clients are keyed by a stable client id (the partition id), never by Flower's random
node id. Participation is recorded for *every* round (it is cheap) so methods such as
exact rollback know when a client first took part.

:class:`UpdateHistory` is the one interface; where the kept rounds live is up to its
store: :class:`~fedunlearn.history.memory.MemoryHistory` keeps them in memory,
:class:`~fedunlearn.history.disk.DiskHistory` in a folder (one ``.npz`` per kept round
and an ``index.json``; each write is atomic, so an interrupted run leaves the rounds it
finished readable)::

    history = new_history(delta_t=2, path="runs/h")   # DiskHistory; path=None: memory
    history.record(1, global_model, {0: update0, 1: update1}, {0: 120, 1: 80}, [0, 1])
    again = UpdateHistory.open("runs/h")               # a DiskHistory
    again[1].updates[0]   # the update of client 0 in round 1
    MemoryHistory(delta_t=2).save("runs/h2")           # copy a memory history to disk

What one kept round is and what breaks it lives in :mod:`.kept`; what the history
says of how training ran (``meta``) in :mod:`.meta`. A store implements a few small
hooks (:class:`~fedunlearn.history.store.HistoryStore`); everything else,
including the participation bookkeeping, lives here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fedunlearn.history.kept import (
    PRECISIONS,
    HistoryError,
    KeptRound,
    copy_arrays,
    fit_problem,
    widened,
)
from fedunlearn.history.meta import TrainingMeta
from fedunlearn.history.participation import ParticipationLog
from fedunlearn.learning.arrays import Arrays

if TYPE_CHECKING:
    from fedunlearn.history.disk import DiskHistory


class UpdateHistory(TrainingMeta, ParticipationLog):
    """Client updates kept every ``delta_t`` rounds; a store decides where they live.

    Parameters
    ----------
    delta_t : int
        Keep rounds ``1, 1 + delta_t, 1 + 2 delta_t, ...`` (FedEraser's interval).
    parameter_keys : sequence of str, optional
        Names of the trainable parameters. Norms and distances use only these, so
        buffers such as BatchNorm running statistics never enter them.
    precision : {"full", "float16"}
        The dtype client updates are kept in: ``"full"`` as given, ``"float16"`` half
        the bytes of float32 (read back in the global model's dtypes).
    """

    def __init__(
        self,
        delta_t: int = 1,
        parameter_keys: Sequence[str] | None = None,
        precision: str = "full",
    ) -> None:
        if not isinstance(delta_t, int) or delta_t < 1:
            raise ValueError(f"delta_t must be a positive integer, got {delta_t!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.delta_t = delta_t
        self.parameter_keys: list[str] | None = (
            list(parameter_keys) if parameter_keys is not None else None
        )
        self._participation: dict[int, tuple[int, ...]] = {}
        self._final: Arrays | None = None
        self.meta: dict[str, Any] = {}

    # ------------------------------------------------------------------ writing
    def keeps(self, server_round: int) -> bool:
        """Whether round ``server_round`` (1-based) is a kept round."""
        return server_round >= 1 and (server_round - 1) % self.delta_t == 0

    def record(
        self,
        server_round: int,
        global_model: Mapping[str, np.ndarray],
        updates: Mapping[int, Mapping[str, np.ndarray]],
        num_examples: Mapping[int, int],
        sampled: Sequence[int],
    ) -> bool:
        """Record a round; store its arrays only if it is a kept round.

        Parameters
        ----------
        server_round : int
            The round, 1-based.
        global_model : mapping of str to ndarray
            The global model the round started from.
        updates : mapping of int to arrays
            Each client's weights after local training minus ``global_model``.
        num_examples : mapping of int to int
            Each client's example count (same clients as ``updates``).
        sampled : sequence of int
            The clients sampled in the round.

        Returns
        -------
        bool
            Whether the arrays were stored.
        """
        if server_round in self._participation and server_round in self:
            raise HistoryError(f"round {server_round} is already recorded")
        self._participation[server_round] = tuple(sorted(int(c) for c in sampled))
        if not self.keeps(server_round):
            self._persist()
            return False
        self._store_round(
            KeptRound(
                round=server_round,
                global_model=copy_arrays(global_model),
                updates={int(c): copy_arrays(u, self.precision) for c, u in updates.items()},
                num_examples={int(c): int(n) for c, n in num_examples.items()},
                sampled=tuple(sorted(int(c) for c in sampled)),
            )
        )
        self._persist()
        return True

    def check_fits(self, model: Mapping[str, np.ndarray]) -> None:
        """HistoryError unless the history was kept for ``model``: the same array names,
        shapes and dtypes as its initial global model."""
        problem = fit_problem(self.initial_model, model)
        if problem:
            raise HistoryError(problem)

    def set_final_model(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Keep the global model at the end of training."""
        self._final = copy_arrays(arrays)
        self._store_final(self._final)
        self._persist()

    # ------------------------------------------------------------------ reading
    @property
    def rounds(self) -> list[int]:
        """Kept rounds, ascending."""
        return sorted(self._kept_ids())

    def _final_or_none(self) -> Arrays | None:
        if self._final is None:
            self._final = self._load_final()
        return self._final

    @property
    def has_final_model(self) -> bool:
        """Whether the history holds the model training ended with."""
        return self._final_or_none() is not None

    @property
    def final_model(self) -> Arrays:
        """The global model at the end of training."""
        final = self._final_or_none()
        if final is None:
            raise HistoryError("the history holds no final model")
        return final

    @property
    def initial_model(self) -> Arrays:
        """The global model training started from (round 1 is always kept)."""
        if 1 not in self:
            raise HistoryError("round 1 is not in the history")
        return self[1].global_model

    def __contains__(self, server_round: object) -> bool:
        return server_round in self._kept_ids()

    def __len__(self) -> int:
        return len(self._kept_ids())

    def __iter__(self) -> Iterator[KeptRound]:
        for r in self.rounds:
            yield self[r]

    def __getitem__(self, server_round: int) -> KeptRound:
        if server_round not in self:
            raise KeyError(
                f"round {server_round} is not kept (kept rounds: {self.rounds}; "
                f"delta_t = {self.delta_t})"
            )
        kept = self._load_round(server_round)
        return kept if self.precision == "full" else widened(kept)

    @property
    def nbytes(self) -> int:
        """Bytes of array data held: kept global models and client updates."""
        return sum(self._round_bytes(r) for r in self._kept_ids())

    def bytes_of(self, *, global_models: bool = True, updates: bool = True) -> int:
        """Bytes of the kept global models and/or the kept client updates.

        Methods report what they need the server to keep: exact rollback needs only
        the global models, FedEraser the updates (and the initial model).
        """
        g = sum(self._global_bytes(r) for r in self._kept_ids())
        return (g if global_models else 0) + (self.nbytes - g if updates else 0)

    def disk_bytes(self) -> int:
        """Bytes the history takes on disk (0 unless the store is on disk)."""
        return 0

    # ------------------------------------------------------------------ disk copies
    def save(self, path: str | Path) -> DiskHistory:
        """Copy this history into a new disk history at ``path`` (an empty or new
        folder) and return it: the same rounds, participation, final model and meta."""
        from fedunlearn.history.disk import copy_to_disk

        return copy_to_disk(self, path)

    @classmethod
    def open(cls, path: str | Path) -> DiskHistory:
        """Open a history written to disk (see :meth:`DiskHistory.open`)."""
        from fedunlearn.history.disk import DiskHistory

        return DiskHistory.open(path)
