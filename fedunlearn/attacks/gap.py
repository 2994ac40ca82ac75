"""Membership inference on the unlearning gap (Chen et al., "When Machine Unlearning
Jeopardizes Privacy", CCS 2021).

An observer of the model before and after unlearning asks, for a candidate record,
"was this removed?". It builds features from both models' outputs on the record and
feeds them to a classifier trained on *shadow* pairs it makes from its own data: a
shadow original trained on a shadow set, and a shadow unlearned model retrained
without a few of its records. Records removed from the shadow set are positives,
records never in it negatives.

Features (``features``):

* ``"difference"``: ``p_before - p_after`` (class order);
* ``"sorted_difference"``: the same with each vector sorted, descending (label-free);
* ``"l2"``: ``||p_before - p_after||``;
* ``"concatenation"``: ``[p_before, p_after]``;
* with ``label_only``: ``[correct_before, correct_after, robust_before, robust_after]``,
  from predicted labels under noise only.

With ``use_labels`` (the default) the posterior features get two more columns,
``log p_before(y | x)`` and ``log p_after(y | x)``: Chen et al. use posteriors only, but an
attacker scoring a record knows its label, and without it the attack cannot see that a
model fitted a record's own (possibly unusual) label. ``use_labels = False`` is the
paper's attack exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fedunlearn.attacks.access import ModelAccess, robustness
from fedunlearn.data.datasets import ArrayDataset

FEATURES = ("difference", "sorted_difference", "l2", "concatenation")
CLASSIFIERS = ("logistic", "forest")

ShadowTrainer = Callable[[ArrayDataset, int], ModelAccess]
"""Trains a model like the target on the given data with the given seed."""


class UnlearningGapAttack:
    """Chen et al.'s attack on (model before, model after).

    Parameters
    ----------
    features : str
        One of :data:`FEATURES` (ignored when ``label_only``).
    shadow_models : int
        Shadow (original, unlearned) pairs to train.
    delete_fraction : float
        Share of each shadow set removed in its shadow unlearned model.
    classifier : {"logistic", "forest"}
        The attack model.
    label_only : bool
        Use only predicted labels (robustness to noise) of both models.
    use_labels : bool
        Add the candidate's log-probability under both models (see the module docstring).
    copies, sigma : int, float
        Noisy queries per candidate for the label-only features.
    seed : int
        Seed of the shadow splits and noise.
    """

    def __init__(
        self,
        features: str = "sorted_difference",
        shadow_models: int = 4,
        delete_fraction: float = 0.2,
        classifier: str = "logistic",
        label_only: bool = False,
        use_labels: bool = True,
        copies: int = 16,
        sigma: float = 0.3,
        seed: int = 0,
    ) -> None:
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        if classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
        if shadow_models < 1 or not 0 < delete_fraction < 1:
            raise ValueError("need shadow_models >= 1 and delete_fraction in (0, 1)")
        self.features = features
        self.shadow_models = shadow_models
        self.delete_fraction = delete_fraction
        self.classifier = classifier
        self.label_only = label_only
        self.use_labels = use_labels
        self.copies = copies
        self.sigma = sigma
        self.seed = seed
        self.model_: object | None = None

    def featurise(
        self, before: ModelAccess, after: ModelAccess, x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """The attack features of each candidate."""
        if self.label_only:
            cols = [
                before.predict_label(x) == y,
                after.predict_label(x) == y,
                robustness(before, x, y, self.copies, self.sigma, self.seed),
                robustness(after, x, y, self.copies, self.sigma, self.seed + 1),
            ]
            return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)
        p, q = before.predict_proba(x), after.predict_proba(x)
        if self.features == "difference":
            out = p - q
        elif self.features == "sorted_difference":
            out = -np.sort(-p, axis=1) + np.sort(-q, axis=1)
        elif self.features == "l2":
            out = np.linalg.norm(p - q, axis=1, keepdims=True)
        else:
            out = np.concatenate([p, q], axis=1)
        if self.use_labels:
            rows = np.arange(len(y))
            fit = np.log(np.clip(np.stack([p[rows, y], q[rows, y]], axis=1), 1e-12, 1.0))
            out = np.concatenate([out, fit], axis=1)
        return out

    def fit(
        self,
        own: ArrayDataset,
        train_shadow: ShadowTrainer,
        targets: ArrayDataset | None = None,
    ) -> UnlearningGapAttack:
        """Train shadow pairs on ``own`` (the attacker's data) and the attack model.

        ``targets``, when given, are records like the candidates the attacker will score
        (e.g. canaries it made itself): the shadow pairs then delete and leave out those,
        so the attack model learns on the kind of record it will judge.
        """
        if len(own) < 8:
            raise ValueError(f"the attacker holds {len(own)} records; shadow models need more")
        rng = np.random.default_rng(self.seed)
        xs, ys = [], []
        for k in range(self.shadow_models):
            if targets is not None and len(targets) >= 4:
                base = own.subset(rng.permutation(len(own))[: len(own) // 2])
                pool = targets
            else:
                base, pool = None, own
            order = rng.permutation(len(pool))
            inside, outside = order[: len(pool) // 2], order[len(pool) // 2 :]
            count = max(1, int(self.delete_fraction * len(inside))) if base is None else len(inside)
            deleted = inside[:count]
            kept = pool.subset(inside[count:])
            shadow_in = _join(base, pool.subset(inside))
            before = train_shadow(shadow_in, self.seed * 1000 + k)
            after = train_shadow(_join(base, kept), self.seed * 1000 + k)
            negatives = outside[:count]
            for index, label in ((deleted, 1), (negatives, 0)):
                part = pool.subset(index)
                xs.append(self.featurise(before, after, part.x, part.y))
                ys.append(np.full(len(part), label))
        features, labels = np.concatenate(xs), np.concatenate(ys)
        if self.classifier == "logistic":
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        else:
            model = RandomForestClassifier(n_estimators=100, random_state=self.seed)
        self.model_ = model.fit(features, labels)
        return self

    def score(
        self, before: ModelAccess, after: ModelAccess, x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """Probability that each candidate was removed between ``before`` and ``after``."""
        if self.model_ is None:
            raise RuntimeError("call fit() first")
        return self.model_.predict_proba(self.featurise(before, after, x, y))[:, 1]


def _join(base: ArrayDataset | None, extra: ArrayDataset) -> ArrayDataset:
    if base is None:
        return extra
    if len(extra) == 0:
        return base
    return ArrayDataset(
        np.concatenate([base.x, extra.x]),
        np.concatenate([base.y, extra.y]),
        np.concatenate([base.ids, extra.ids]),
    )
