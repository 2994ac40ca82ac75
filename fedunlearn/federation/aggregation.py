"""What a round's aggregation must give: finite weights, and (for methods that rebuild
the model from stored updates) the start plus the example-weighted mean of the updates.

Also the round's training metrics (:func:`round_summary`) and the view of a parsed
reply that a wrapped Flower strategy's own ``aggregate_train`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from flwr.app import Message, MessageType, MetricRecord, RecordDict

from fedunlearn.federation import contract
from fedunlearn.federation.replies import ClientReply, reply_number
from fedunlearn.learning.arrays import Arrays

__all__ = [
    "WEIGHTED_MEAN",
    "DivergedError",
    "as_message",
    "moved_by_weighted_mean",
    "non_finite",
    "require_finite",
    "round_summary",
]

WEIGHTED_MEAN = "weighted-mean"
"""The history's ``aggregation`` when every global model moved by the weighted mean."""


class DivergedError(RuntimeError):
    """A global model has non-finite weights: training (or a method's rounds) diverged."""


def non_finite(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """Names of the arrays holding NaN or infinite values."""
    return [k for k, v in arrays.items() if not np.all(np.isfinite(np.asarray(v)))]


def require_finite(arrays: Arrays, phase: str, training_round: int) -> None:
    """Raise :class:`DivergedError` naming the broken arrays if any is not finite."""
    broken = non_finite(arrays)
    if broken:
        raise DivergedError(
            f"the global model has non-finite weights after {phase} round "
            f"{training_round} (in {', '.join(broken[:3])}): training diverged; lower "
            "the learning rate, or check the clients' data for NaN"
        )


def moved_by_weighted_mean(
    start: Arrays,
    updates: Mapping[int, Arrays],
    counts: Mapping[int, int],
    aggregated: Arrays,
) -> bool:
    """Whether ``aggregated`` is ``start`` plus the example-weighted mean of ``updates``
    (to float32 rounding)."""
    total = sum(counts.values())
    if total <= 0:
        return False
    for key, base in start.items():
        if not np.issubdtype(np.asarray(base).dtype, np.floating):
            continue
        mean = sum(np.asarray(u[key], np.float64) * (counts[c] / total) for c, u in updates.items())
        expected = np.asarray(base, np.float64) + mean
        scale = 1e-4 * (1.0 + float(np.max(np.abs(expected))))
        if float(np.max(np.abs(np.asarray(aggregated[key], np.float64) - expected))) > scale:
            return False
    return True


def round_summary(contents: list[RecordDict], weighted_by_key: str) -> MetricRecord:
    """A round's training metrics: the example-weighted ``train-loss``, how many
    clients trained and their summed ``epochs`` (NaN where a client did not report it)."""
    metrics = [next(iter(c.metric_records.values())) for c in contents]
    counts = [float(m[weighted_by_key]) for m in metrics]
    losses = [reply_number(m, "train-loss") for m in metrics]
    epochs = [reply_number(m, contract.EPOCHS) for m in metrics]
    loss = (
        math.nan
        if None in losses
        else sum(v * n for v, n in zip(losses, counts, strict=True)) / (sum(counts) or 1)  # type: ignore[operator]
    )
    return MetricRecord(
        {
            "train-loss": loss,
            "clients": len(contents),
            "client-epochs": math.nan if None in epochs else sum(epochs),  # type: ignore[arg-type]
        }
    )


def as_message(reply: ClientReply) -> Message:
    """A parsed reply as a wrapped strategy's aggregation reads it (only its content)."""
    return Message(reply.content, dst_node_id=0, message_type=MessageType.TRAIN)
