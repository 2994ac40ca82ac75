"""Impact monitoring (defence stage S2): check an unlearned model before accepting it.

The server holds some labelled data of its own (here, a seeded part of the held-out
split). Before it accepts the model an unlearning produced, it compares it with the
model the unlearning started from on two signals:

* **validation accuracy**: an unlearning that loses more than ``max_accuracy_drop`` is
  anomalous (over-unlearning, a damaging request);
* **trigger scan**: without knowing any attacker's trigger, the server stamps white
  squares of a few fixed sizes (``SCAN_SIZES``, whatever the experiment's canary or any
  attacker uses) in each corner of its validation inputs and measures, for every class
  ``c``, how much more often inputs of other classes are classified as ``c`` with the
  square than without. The largest such excess is the *backdoor score*; an unlearning
  that raises it by more than ``max_trigger_rise`` may have woken a dormant backdoor
  (camouflaged poisoning). It finds square corner patches only: a trigger of another
  shape or place can pass it, as it would pass any scan of a fixed family.

Every decision is recorded with its reason. On an anomaly the server keeps the previous
model (``reject``) and, with ``halt``, also serves no further request with that method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from fedunlearn.data.canary import FLAT_CORNERS, IMAGE_CORNERS, apply_trigger
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.learning.arrays import Arrays, load_arrays
from fedunlearn.learning.metrics import accuracy
from fedunlearn.learning.training import predict_logits

SCAN_SIZES = (2, 4, 6)  # square sides, fixed: the server knows no attacker's trigger


def scan_patches(x: np.ndarray) -> dict[str, np.ndarray]:
    """The validation inputs with each scanned square: ``"<corner>/<size>"`` -> inputs."""
    if x.ndim == 4:
        corners, side = IMAGE_CORNERS, min(x.shape[2], x.shape[3])
    else:
        corners, side = FLAT_CORNERS, x.shape[1]
    sizes = [s for s in SCAN_SIZES if s < side] or [1]
    return {
        f"{corner}/{size}": apply_trigger(x, size, corner=corner)
        for corner in corners
        for size in sizes
    }


def backdoor_scores(
    logits_clean: np.ndarray, logits_triggered: dict[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """Per patch: the largest excess, over classes ``c``, of "other classes predicted
    as c" with the square compared with without."""
    classes = logits_clean.shape[1]
    clean_pred = logits_clean.argmax(axis=1)
    scores = {}
    for corner, logits in logits_triggered.items():
        pred = logits.argmax(axis=1)
        best = 0.0
        for c in range(classes):
            others = labels != c
            if others.any():
                excess = np.mean(pred[others] == c) - np.mean(clean_pred[others] == c)
                best = max(best, float(excess))
        scores[corner] = best
    return scores


@dataclass(frozen=True)
class MonitorDecision:
    """One check of one unlearned model."""

    accepted: bool
    reason: str
    accuracy_before: float
    accuracy_after: float
    backdoor_rise: float
    backdoor_patch: str

    def as_dict(self) -> dict:
        return asdict(self)


class ImpactMonitor:
    """Compares a model before and after unlearning on server-held data.

    Parameters
    ----------
    new_model : callable
        Fresh model of the experiment's architecture.
    validation : ArrayDataset
        Labelled data the server holds.
    max_accuracy_drop, max_trigger_rise : float
        The thresholds (see the module docstring).
    """

    def __init__(
        self,
        new_model: Callable[[], nn.Module],
        validation: ArrayDataset,
        max_accuracy_drop: float,
        max_trigger_rise: float,
    ) -> None:
        self.new_model = new_model
        self.validation = validation
        self.triggered = scan_patches(validation.x)
        self.max_accuracy_drop = max_accuracy_drop
        self.max_trigger_rise = max_trigger_rise

    def measure(self, arrays: Arrays) -> tuple[float, dict[str, float]]:
        """(validation accuracy, backdoor score per scanned patch) of a model."""
        model = self.new_model()
        load_arrays(model, arrays)
        clean = predict_logits(model, self.validation.x)
        triggered = {c: predict_logits(model, x) for c, x in self.triggered.items()}
        scores = backdoor_scores(clean, triggered, self.validation.y)
        return accuracy(clean, self.validation.y), scores

    def check(self, before: Arrays, after: Arrays) -> MonitorDecision:
        """Accept or reject ``after`` against ``before``, with the reason."""
        acc_b, door_b = self.measure(before)
        acc_a, door_a = self.measure(after)
        reasons = []
        if acc_b - acc_a > self.max_accuracy_drop:
            reasons.append(
                f"validation accuracy fell {acc_b - acc_a:.3f} (> {self.max_accuracy_drop})"
            )
        patch = max(door_a, key=lambda c: door_a[c] - door_b[c])
        rise = door_a[patch] - door_b[patch]
        if rise > self.max_trigger_rise:
            reasons.append(
                f"trigger-scan backdoor score ({patch}) rose {rise:.3f} (> {self.max_trigger_rise})"
            )
        return MonitorDecision(
            accepted=not reasons,
            reason="; ".join(reasons) or "within thresholds",
            accuracy_before=acc_b,
            accuracy_after=acc_a,
            backdoor_rise=rise,
            backdoor_patch=patch,
        )
