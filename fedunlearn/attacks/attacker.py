"""The attacker's side of a leakage audit: what it holds, what it scores.

:class:`Attacker` is run by an outside observer (in the harness, with query access to
the released models) or by an inference-attacker client (with the weights it was sent).
It sees only:

* its own data (to train shadow models),
* the models it may query (by label: ``original`` before unlearning, one per method
  after),
* :class:`CandidateView`: candidate records (inputs and labels) to score, *without*
  the truth about them, which stays with the harness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from fedunlearn.attacks.access import FullAccess, ModelAccess
from fedunlearn.attacks.deletion import DeletionInference
from fedunlearn.attacks.gap import UnlearningGapAttack
from fedunlearn.attacks.membership import LabelOnlyAttack, LossAttack
from fedunlearn.data.canary import memorization_canaries
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.learning.arrays import model_to_arrays
from fedunlearn.learning.training import train_locally


@dataclass(frozen=True)
class CandidateView:
    """Candidate records as the attacker sees them: inputs and labels only."""

    membership: tuple[np.ndarray, np.ndarray]
    deletion: tuple[np.ndarray, np.ndarray]
    clients: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackSettings:
    """How the attacker attacks (from ``[attack]``)."""

    label_only: bool = False
    shadow_models: int = 4
    shadow_epochs: float = 10.0
    features: str = "sorted_difference"
    classifier: str = "logistic"
    batch_size: int = 32
    learning_rate: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    canaries: int = 0
    """Noise canaries the attacker draws itself and adds to its shadow data: in a privacy
    audit the adversary knows how canaries are made, not which ones were used."""


class Attacker:
    """Scores every attack on every released model from what the attacker holds.

    Parameters
    ----------
    own : ArrayDataset
        The attacker's own records (shadow models train on them).
    new_model : callable
        A fresh model of the target's architecture (grey-box knowledge).
    settings : AttackSettings
        Attack options.
    """

    def __init__(
        self, own: ArrayDataset, new_model: Callable[[], nn.Module], settings: AttackSettings
    ) -> None:
        self.new_model = new_model
        self.settings = settings
        self.own = own
        self.canaries: ArrayDataset | None = None
        if settings.canaries:
            num_classes = int(list(new_model().parameters())[-1].shape[0])
            self.canaries = memorization_canaries(
                settings.canaries,
                tuple(own.x.shape[1:]),
                num_classes,
                first_id=-(10**9),
                seed=settings.seed + 7,
            )

    def train_shadow(self, data: ArrayDataset, seed: int) -> ModelAccess:
        """A shadow model: the target's architecture trained on ``data``."""
        s = self.settings
        model = self.new_model()
        train_locally(
            model,
            data,
            epochs=s.shadow_epochs,
            batch_size=s.batch_size,
            learning_rate=s.learning_rate,
            momentum=s.momentum,
            seed=seed,
        )
        return FullAccess(self.new_model, model_to_arrays(model))

    def score_all(
        self, models: Mapping[str, ModelAccess], view: CandidateView, before: str = "original"
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[int, float]]]:
        """Scores by ``"<attack>/<model>"``, and client scores by model.

        Attacks: ``mia_baseline`` on every model; ``mia_gap`` and ``deletion_records``
        on every pair (``before``, model); client scores for deletion inference.
        """
        s = self.settings
        baseline = LabelOnlyAttack(seed=s.seed) if s.label_only else LossAttack()
        gap = UnlearningGapAttack(
            features=s.features,
            shadow_models=s.shadow_models,
            classifier=s.classifier,
            label_only=s.label_only,
            seed=s.seed,
        ).fit(self.own, self.train_shadow, self.canaries)
        deletion = DeletionInference(label_only=s.label_only, seed=s.seed)
        scores: dict[str, np.ndarray] = {}
        clients: dict[str, dict[int, float]] = {}
        for label, access in models.items():
            scores[f"mia_baseline/{label}"] = baseline.score(access, *view.membership)
            if label == before:
                continue
            scores[f"mia_gap/{label}"] = gap.score(models[before], access, *view.membership)
            scores[f"deletion_records/{label}"] = deletion.score(
                models[before], access, *view.deletion
            )
            if view.clients:
                clients[label] = dict(deletion.rank_clients(models[before], access, view.clients))
        return scores, clients
