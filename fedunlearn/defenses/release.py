"""What the world gets of a model (defence stage S3): the released weights.

Output-side release modes (top-k, labels, rounding, temperature) act on queries and live
with the access model (:class:`~fedunlearn.attacks.access.ReleasedAccess`); parameter
noise acts on the weights themselves, here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import nn

from fedunlearn.learning.arrays import Arrays
from fedunlearn.seeding import derive_seed

ATTACK = "query.attack"
"""Ask an inference-attacker client to score candidates against the models it is sent."""

MEMBERSHIP_ATTACKS = ("mia_baseline", "mia_gap")


def release_weights(
    models: dict[str, Arrays], noise: float, seed: int, new_model: Callable[[], nn.Module]
) -> dict[str, Arrays]:
    """The weights as released: with Gaussian noise on trainable parameters if asked."""
    if noise <= 0:
        return models
    trainable = {n for n, p in new_model().named_parameters() if p.requires_grad}
    out = {}
    for i, (label, arrays) in enumerate(sorted(models.items())):
        rng = np.random.default_rng(derive_seed(seed, "release-noise", i) % 2**32)
        out[label] = {
            k: (v + rng.normal(0.0, noise, size=v.shape)).astype(v.dtype) if k in trainable else v
            for k, v in arrays.items()
        }
    return out
