"""How well an attack's scores separate the truth: AUC, TPR at low FPR, advantage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


@dataclass(frozen=True)
class AttackMetrics:
    """ROC summary of an attack.

    ``advantage`` is ``max(TPR - FPR)`` over thresholds (the membership advantage);
    ``tpr_at_1pct`` and ``tpr_at_01pct`` the best TPR at FPR <= 1% and <= 0.1%.
    """

    auc: float
    tpr_at_1pct: float
    tpr_at_01pct: float
    advantage: float
    positives: int
    negatives: int
    fpr: list[float] = field(repr=False, default_factory=list)
    tpr: list[float] = field(repr=False, default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "auc": self.auc,
            "tpr_at_1pct": self.tpr_at_1pct,
            "tpr_at_01pct": self.tpr_at_01pct,
            "advantage": self.advantage,
            "positives": float(self.positives),
            "negatives": float(self.negatives),
        }


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, limit: float) -> float:
    """The highest TPR reached at a false positive rate of at most ``limit``."""
    allowed = fpr <= limit + 1e-12
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def attack_metrics(scores: np.ndarray, truth: np.ndarray) -> AttackMetrics:
    """ROC metrics of ``scores`` against binary ``truth`` (1: removed / member)."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth).astype(int)
    if scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} differ in shape")
    positives, negatives = int(truth.sum()), int((1 - truth).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("need both positive and negative candidates to score an attack")
    if not np.isfinite(scores).all():
        raise ValueError("attack scores must be finite")
    # Every operating point: dropping "intermediate" ones loses real thresholds inside
    # runs of tied scores (label-only and rounded releases tie a lot).
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    return AttackMetrics(
        auc=float(roc_auc_score(truth, scores)),
        tpr_at_1pct=tpr_at_fpr(fpr, tpr, 0.01),
        tpr_at_01pct=tpr_at_fpr(fpr, tpr, 0.001),
        advantage=float(np.max(tpr - fpr)),
        positives=positives,
        negatives=negatives,
        fpr=[float(v) for v in fpr],
        tpr=[float(v) for v in tpr],
    )
