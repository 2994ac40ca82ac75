"""One kept round of the history, and what makes a kept round or a whole history
unusable: :class:`KeptRound`, :func:`round_problem`, :func:`fit_problem` and
:class:`HistoryError`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fedunlearn.learning.arrays import Arrays, nbytes

__all__ = [
    "FORMAT",
    "PRECISIONS",
    "VERSION",
    "HistoryError",
    "KeptRound",
    "copy_arrays",
    "fit_problem",
    "round_problem",
    "widened",
]

FORMAT = "fedunlearn-history"
"""The ``format`` field of a disk history's ``index.json``."""
VERSION = 1
"""The ``version`` field of a disk history's ``index.json``."""


class HistoryError(RuntimeError):
    """A history on disk is missing, corrupt, or does not fit what is asked of it."""


@dataclass(frozen=True)
class KeptRound:
    """Everything the server kept about one training round."""

    round: int
    global_model: Arrays
    updates: dict[int, Arrays]
    num_examples: dict[int, int]
    sampled: tuple[int, ...]
    clients: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if set(self.updates) != set(self.num_examples):
            raise ValueError("updates and num_examples must name the same clients")
        object.__setattr__(self, "clients", tuple(sorted(self.updates)))

    @property
    def nbytes(self) -> int:
        """Bytes of array data in this round."""
        return nbytes(self.global_model) + sum(nbytes(u) for u in self.updates.values())


def round_problem(kept: KeptRound) -> str:
    """What is wrong with a kept round as read back ("" when nothing): every update must
    have the global model's arrays, shapes and finite values, and come from a sampled
    client with a positive example count."""
    shapes = {k: np.shape(v) for k, v in kept.global_model.items()}
    if any(not np.all(np.isfinite(v)) for v in kept.global_model.values()):
        return f"round {kept.round}'s global model has non-finite values"
    unsampled = sorted(set(kept.updates) - set(kept.sampled))
    if unsampled:
        return f"round {kept.round} has updates of clients {unsampled} it did not sample"
    for client, update in kept.updates.items():
        if {k: np.shape(v) for k, v in update.items()} != shapes:
            return f"client {client}'s update in round {kept.round} does not fit the model"
        if any(not np.all(np.isfinite(v)) for v in update.values()):
            return f"client {client}'s update in round {kept.round} has non-finite values"
        if kept.num_examples[client] <= 0:
            count = kept.num_examples[client]
            return f"client {client} reported {count} examples in round {kept.round}"
    return ""


def fit_problem(kept: Mapping[str, np.ndarray], model: Mapping[str, np.ndarray]) -> str:
    """Why a history whose initial global model is ``kept`` was not kept for ``model``
    ("" when it was): the array names, shapes and dtypes must be the same."""
    if set(kept) != set(model):
        return (
            f"the history does not fit the model: it keeps {sorted(set(kept) - set(model))} "
            f"the model lacks, and lacks {sorted(set(model) - set(kept))}"
        )
    for name, value in model.items():
        have = np.asarray(kept[name])
        if have.shape != np.shape(value) or have.dtype != np.asarray(value).dtype:
            return (
                f"the history does not fit the model: {name} is {have.dtype}{list(have.shape)} "
                f"in the history, {np.asarray(value).dtype}{list(np.shape(value))} in the model"
            )
    return ""


PRECISIONS = ("full", "float16")
"""What client updates may be kept as (floating arrays only; others stay as they are)."""


def copy_arrays(arrays: Mapping[str, np.ndarray], precision: str = "full") -> Arrays:
    """A copy; floating arrays in ``precision`` unless it is ``"full"``."""
    return {
        k: np.array(v, dtype=precision if precision != "full" and _floating(v) else None)
        for k, v in arrays.items()
    }


def _floating(value: np.ndarray) -> bool:
    return bool(np.issubdtype(np.asarray(value).dtype, np.floating))


def widened(kept: KeptRound) -> KeptRound:
    """A round whose updates were kept at a lower precision, read back in the global
    model's dtypes (what methods compute with)."""
    dtypes = {k: np.asarray(v).dtype for k, v in kept.global_model.items()}
    updates = {
        c: {k: np.asarray(v, dtype=dtypes.get(k, np.asarray(v).dtype)) for k, v in u.items()}
        for c, u in kept.updates.items()
    }
    return KeptRound(kept.round, kept.global_model, updates, kept.num_examples, kept.sampled)
