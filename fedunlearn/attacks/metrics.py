"""How well an attack's scores separate the truth: AUC, TPR at low FPR, advantage,
with bootstrap confidence intervals.

TPR at an FPR limit is reported only where the negatives resolve it: with ``N``
negatives the lowest non-zero FPR is ``1 / N`` (``lowest_fpr``), so TPR at 0.1% FPR
needs at least 1,000 negatives and TPR at 1% at least 100. Below that the figure is
NaN (``null`` in ``metrics.json``), never the TPR at FPR 0 passed off as it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from fedunlearn.attacks.bootstrap import (
    TOLERANCE,
    bootstrap_figures,
    percentile_interval,
    resolvable,
)

FPR_LIMITS = {"tpr_at_1pct": 0.01, "tpr_at_01pct": 0.001}
"""The low-FPR operating points reported, by figure name."""

CI_LEVEL = 0.95
"""Confidence level of the bootstrap intervals."""

INTERVAL_FIGURES = ("auc", *FPR_LIMITS, "advantage")
"""Figures given a bootstrap interval (``<figure>_ci_low``, ``<figure>_ci_high``)."""


@dataclass(frozen=True)
class AttackMetrics:
    """ROC summary of an attack.

    ``advantage`` is ``max(TPR - FPR)`` over thresholds (the membership advantage);
    ``tpr_at_1pct`` and ``tpr_at_01pct`` the best TPR at FPR <= 1% and <= 0.1%, NaN
    where the negatives cannot resolve that FPR (``lowest_fpr = 1 / negatives`` is
    above it); ``intervals`` the bootstrap confidence intervals by figure (empty
    without resampling).
    """

    auc: float
    tpr_at_1pct: float
    tpr_at_01pct: float
    advantage: float
    positives: int
    negatives: int
    lowest_fpr: float = float("nan")
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    fpr: list[float] = field(repr=False, default_factory=list)
    tpr: list[float] = field(repr=False, default_factory=list)

    def summary(self) -> dict[str, float]:
        """The flat figures of ``metrics.json``: each figure, then its interval."""
        out = {
            "auc": self.auc,
            "tpr_at_1pct": self.tpr_at_1pct,
            "tpr_at_01pct": self.tpr_at_01pct,
            "advantage": self.advantage,
            "positives": float(self.positives),
            "negatives": float(self.negatives),
            "lowest_fpr": self.lowest_fpr,
        }
        for name, (low, high) in self.intervals.items():
            out[f"{name}_ci_low"] = low
            out[f"{name}_ci_high"] = high
        return out


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, limit: float) -> float:
    """The highest TPR reached at a false positive rate of at most ``limit`` (on the
    curve as given: whether its negatives resolve ``limit`` is the caller's question)."""
    allowed = fpr <= limit + TOLERANCE
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def attack_metrics(
    scores: np.ndarray, truth: np.ndarray, resamples: int = 0, seed: int = 0
) -> AttackMetrics:
    """ROC metrics of ``scores`` against binary ``truth`` (1: removed / member).

    Parameters
    ----------
    scores : ndarray
        One score per candidate, higher meaning positive.
    truth : ndarray
        1 for a positive candidate, 0 for a negative one.
    resamples : int
        Bootstrap resamples for the confidence intervals (0: none).
    seed : int
        Seed of the bootstrap.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth).astype(int)
    if scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} differ in shape")
    positives, negatives = int(truth.sum()), int((1 - truth).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("need both positive and negative candidates to score an attack")
    if not np.isfinite(scores).all():
        raise ValueError("attack scores must be finite")
    if resamples < 0:
        raise ValueError(f"resamples must be >= 0, got {resamples}")
    # Every operating point: dropping "intermediate" ones loses real thresholds inside
    # runs of tied scores (label-only and rounded releases tie a lot).
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    low_tpr = {
        name: tpr_at_fpr(fpr, tpr, limit) if resolvable(negatives, limit) else math.nan
        for name, limit in FPR_LIMITS.items()
    }
    intervals: dict[str, tuple[float, float]] = {}
    if resamples:
        limits = {n: v for n, v in FPR_LIMITS.items() if resolvable(negatives, v)}
        draws = bootstrap_figures(scores, truth, limits, resamples, seed)
        for name in INTERVAL_FIGURES:
            unresolved = (math.nan, math.nan)
            intervals[name] = (
                percentile_interval(draws[name], CI_LEVEL) if name in draws else unresolved
            )
    return AttackMetrics(
        auc=float(roc_auc_score(truth, scores)),
        tpr_at_1pct=low_tpr["tpr_at_1pct"],
        tpr_at_01pct=low_tpr["tpr_at_01pct"],
        advantage=float(np.max(tpr - fpr)),
        positives=positives,
        negatives=negatives,
        lowest_fpr=1.0 / negatives,
        intervals=intervals,
        fpr=[float(v) for v in fpr],
        tpr=[float(v) for v in tpr],
    )
