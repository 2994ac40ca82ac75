"""Inference attacks on unlearning, scikit-learn style: ``fit`` on what the attacker
holds, ``score`` candidate records from what it can query; higher scores mean "was
removed" (or "is a member"). The harness, which alone knows the truth, turns scores into
:class:`~fedunlearn.attacks.metrics.AttackMetrics`.

* :class:`~fedunlearn.attacks.membership.LossAttack`,
  :class:`~fedunlearn.attacks.membership.ConfidenceAttack`: threshold membership
  inference on one model (the baseline);
* :class:`~fedunlearn.attacks.membership.LabelOnlyAttack`: the same from predicted
  labels only, by robustness to noise;
* :class:`~fedunlearn.attacks.gap.UnlearningGapAttack`: membership inference on the gap
  between the models before and after unlearning (Chen et al., CCS 2021), with shadow
  models trained on the attacker's own data;
* :class:`~fedunlearn.attacks.deletion.DeletionInference`: which records, or which
  client, was removed;
* :class:`~fedunlearn.attacks.attacker.Attacker`: runs them all on every model it may
  query; :mod:`~fedunlearn.attacks.wire` carries a client attacker's query and scores.
  The harness's side, which holds the truth, is :mod:`fedunlearn.evaluation.leakage`.

May import: :mod:`fedunlearn.data`, :mod:`fedunlearn.learning` (never the harness's
truth in :mod:`fedunlearn.data.world` or :mod:`fedunlearn.evaluation`).
"""

from fedunlearn.attacks.access import FullAccess, LabelAccess, ModelAccess
from fedunlearn.attacks.deletion import DeletionInference
from fedunlearn.attacks.gap import UnlearningGapAttack
from fedunlearn.attacks.membership import ConfidenceAttack, LabelOnlyAttack, LossAttack
from fedunlearn.attacks.metrics import AttackMetrics, attack_metrics

__all__ = [
    "AttackMetrics",
    "ConfidenceAttack",
    "DeletionInference",
    "FullAccess",
    "LabelAccess",
    "LabelOnlyAttack",
    "LossAttack",
    "ModelAccess",
    "UnlearningGapAttack",
    "attack_metrics",
]
