"""Deletion inference: which records, or which client, the unlearning removed.

Given candidates that were all in training, the removed ones are those whose fit
worsened most between the model before and after: the score is the drop of
``log p(y | x)`` (or, with labels only, of robustness to noise). For clients, the
attacker holds a few records of each candidate client; the client whose records
worsened most on average is the guess.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedunlearn.attacks.access import ModelAccess, robustness, true_class_probability


class DeletionInference:
    """Rank candidates by how much worse the model fits them after unlearning.

    Parameters
    ----------
    label_only : bool
        Use robustness of the predicted label to noise instead of probabilities.
    copies, sigma, seed
        Noise queries for the label-only signal.
    """

    def __init__(
        self, label_only: bool = False, copies: int = 16, sigma: float = 0.3, seed: int = 0
    ) -> None:
        self.label_only = label_only
        self.copies = copies
        self.sigma = sigma
        self.seed = seed

    def _fit(self, access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.label_only:
            correct = (access.predict_label(x) == y).astype(np.float64)
            return correct + robustness(access, x, y, self.copies, self.sigma, self.seed)
        return np.log(np.clip(true_class_probability(access, x, y), 1e-12, 1.0))

    def score(
        self, before: ModelAccess, after: ModelAccess, x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """Per record: how much worse ``after`` fits it than ``before`` (higher: removed)."""
        return self._fit(before, x, y) - self._fit(after, x, y)

    def rank_clients(
        self,
        before: ModelAccess,
        after: ModelAccess,
        samples: Mapping[int, tuple[np.ndarray, np.ndarray]],
    ) -> list[tuple[int, float]]:
        """Candidate clients with their mean score, most likely removed first."""
        scores = {
            c: float(np.mean(self.score(before, after, x, y))) for c, (x, y) in samples.items()
        }
        return sorted(scores.items(), key=lambda kv: -kv[1])
