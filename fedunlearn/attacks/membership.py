"""Membership inference on one model: the baseline every unlearning attack is read
against.

* :class:`LossAttack` (Yeom et al., CSF 2018): members have lower loss; score is
  ``log p(y | x)``.
* :class:`ConfidenceAttack`: score is the top probability (needs no label).
* :class:`LabelOnlyAttack` (Choquette-Choo et al., ICML 2021): from labels alone,
  members stay correctly classified under more input noise; score is the share of
  noisy copies still labelled ``y``.

All are threshold attacks: ``score`` ranks candidates (higher: member), ``fit``
optionally picks the threshold that maximises advantage on data whose membership the
attacker knows (its own), for ``predict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from fedunlearn.attacks.access import ModelAccess, robustness, true_class_probability


class _ThresholdAttack(ABC):
    threshold: float | None = None

    @abstractmethod
    def score(self, access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Membership score of each candidate (higher: member)."""

    def fit(
        self,
        access: ModelAccess,
        members: tuple[np.ndarray, np.ndarray],
        nonmembers: tuple[np.ndarray, np.ndarray],
    ) -> _ThresholdAttack:
        """Pick the threshold with the best advantage on known members/non-members."""
        s_in = self.score(access, *members)
        s_out = self.score(access, *nonmembers)
        candidates = np.unique(np.concatenate([s_in, s_out]))
        gains = [np.mean(s_in >= t) - np.mean(s_out >= t) for t in candidates]
        self.threshold = float(candidates[int(np.argmax(gains))])
        return self

    def predict(self, access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Member (True) or not, once fitted."""
        if self.threshold is None:
            raise RuntimeError("call fit() before predict(), or rank with score()")
        return self.score(access, x, y) >= self.threshold


class LossAttack(_ThresholdAttack):
    """Membership by loss: score = log p(y | x)."""

    def score(self, access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.log(np.clip(true_class_probability(access, x, y), 1e-12, 1.0))


class ConfidenceAttack(_ThresholdAttack):
    """Membership by confidence: score = max_c p(c | x)."""

    def score(self, access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return access.predict_proba(x).max(axis=1)


class LabelOnlyAttack(_ThresholdAttack):
    """Membership from labels only: robustness of the correct label to Gaussian noise.

    Parameters
    ----------
    copies : int
        Noisy copies queried per candidate.
    sigma : float
        Standard deviation of the noise, in input units ([0, 1] pixels).
    seed : int
        Seed of the noise.
    """

    def __init__(self, copies: int = 16, sigma: float = 0.3, seed: int = 0) -> None:
        if copies < 1 or sigma <= 0:
            raise ValueError("copies must be >= 1 and sigma > 0")
        self.copies = copies
        self.sigma = sigma
        self.seed = seed

    def score(self, access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        correct = (access.predict_label(x) == y).astype(np.float64)
        return correct + robustness(access, x, y, self.copies, self.sigma, self.seed)
