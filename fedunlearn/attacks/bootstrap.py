"""Bootstrap confidence intervals on an attack's ROC figures, vectorised with NumPy.

Each resample draws the positives and the negatives with replacement, separately
(a stratified bootstrap: every resample keeps the numbers of both, so the lowest FPR it
can resolve stays that of the candidates), and recomputes AUC, TPR at each low FPR and
advantage. The candidates' distinct scores are binned once; a resample is then a row
of counts per bin, and every figure of every resample follows from cumulative sums over
the bins, so ``B`` resamples of ``n`` candidates cost ``O(B * n)``.

The figures of one row of counts are exactly those of scikit-learn's
``roc_auc_score`` and ``roc_curve(..., drop_intermediate=False)`` on the records it
counts (tests check it); intervals are percentile intervals over the resamples.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TOLERANCE = 1e-12
"""Slack when comparing a false positive rate with an FPR limit (``k / N <= limit``)."""

CHUNK = 256
"""Resamples drawn at once (bounds memory to ``CHUNK * n`` integers)."""


def resolvable(negatives: int, limit: float) -> bool:
    """Whether ``negatives`` resolve an FPR of ``limit``: one false positive among them,
    the lowest non-zero FPR, ``1 / negatives``, must be at most ``limit``."""
    return negatives > 0 and 1.0 / negatives <= limit + TOLERANCE


def curve_figures(
    positives: np.ndarray, negatives: np.ndarray, limits: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """AUC, advantage and TPR at each FPR limit of rows of counts per score bin.

    Parameters
    ----------
    positives, negatives : ndarray of shape (B, K)
        How many positive and negative candidates each of ``B`` samples holds in each of
        ``K`` score bins, the bins in ascending order of score.
    limits : mapping of str to float
        FPR limits, by the name of the figure (``{"tpr_at_1pct": 0.01}``).

    Returns
    -------
    dict of str to ndarray of shape (B,)
        ``auc`` (ties count half), ``advantage`` (max TPR - FPR over thresholds, the
        point (0, 0) included) and, for each limit, the highest TPR at an FPR of at most
        the limit.
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    n_pos = pos.sum(axis=1)
    n_neg = neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives scoring strictly lower, per bin
    out = {"auc": (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)}
    # Threshold at each bin's score: candidates at or above it are called positive.
    tpr = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1] / n_pos[:, None]
    fpr = np.cumsum(neg[:, ::-1], axis=1)[:, ::-1] / n_neg[:, None]
    out["advantage"] = np.maximum((tpr - fpr).max(axis=1), 0.0)
    for name, limit in limits.items():
        allowed = fpr <= limit + TOLERANCE
        out[name] = np.where(allowed, tpr, 0.0).max(axis=1)  # 0: the point (0, 0)
    return out


def _counts(bins: np.ndarray, k: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Counts per bin of ``resamples`` draws with replacement of ``bins``: (B, k)."""
    draws = bins[rng.integers(0, len(bins), size=(resamples, len(bins)))]
    offsets = np.arange(resamples)[:, None] * k
    return np.bincount((draws + offsets).ravel(), minlength=resamples * k).reshape(resamples, k)


def bootstrap_figures(
    scores: np.ndarray,
    truth: np.ndarray,
    limits: Mapping[str, float],
    resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """The figures of :func:`curve_figures` over ``resamples`` stratified resamples.

    Parameters
    ----------
    scores : ndarray
        One score per candidate (higher: positive).
    truth : ndarray
        1 for a positive candidate, 0 for a negative one.
    limits : mapping of str to float
        FPR limits, by figure name.
    resamples : int
        Number of resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict of str to ndarray of shape (resamples,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth).astype(bool)
    _, inverse = np.unique(scores, return_inverse=True)
    k = int(inverse.max()) + 1 if len(inverse) else 0
    pos_bins, neg_bins = inverse[truth], inverse[~truth]
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        parts.append(
            curve_figures(_counts(pos_bins, k, size, rng), _counts(neg_bins, k, size, rng), limits)
        )
    names = ["auc", "advantage", *limits]
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``values``."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(values, dtype=np.float64), [tail, 1.0 - tail])
    return float(low), float(high)
