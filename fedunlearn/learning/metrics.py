"""Measures on model outputs and weights, from logits and named arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedunlearn.learning.arrays import l2_norm, subtract


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose arg-max logit is the label (NaN for no rows)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def attack_success_rate(triggered_logits: np.ndarray, target_class: int) -> float:
    """Share of triggered inputs classified as the target class.

    Pass only inputs whose true class is not the target (see
    :func:`fedunlearn.canary.triggered_test_set`), so a clean model scores near the
    base rate of mistaking those inputs for the target.
    """
    if len(triggered_logits) == 0:
        return float("nan")
    return float(np.mean(np.argmax(triggered_logits, axis=1) == target_class))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, numerically stable."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def mean_kl(reference_logits: np.ndarray, model_logits: np.ndarray) -> float:
    """Mean over rows of KL(p_reference || p_model) between output distributions, in nats.

    Zero when the model's outputs match the reference's on every row.
    """
    if len(reference_logits) == 0:
        return float("nan")
    log_p = log_softmax(reference_logits)
    log_q = log_softmax(model_logits)
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))


def parameter_distance(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], keys: Sequence[str] | None = None
) -> float:
    """L2 distance between two models' weights over ``keys`` (trainable parameters)."""
    return l2_norm(subtract(a, b), keys)
