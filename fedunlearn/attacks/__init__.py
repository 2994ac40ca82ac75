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
* calibrated tests against reference (shadow) federations, pure NumPy/SciPy:
  :class:`~fedunlearn.attacks.calibrated.LiRA` (online and offline),
  :class:`~fedunlearn.attacks.calibrated.ULiRA` (unlearned or retrained?),
  :class:`~fedunlearn.attacks.rmia.RMIA`, the per-client test
  :func:`~fedunlearn.attacks.calibrated.client_scores`, and the statistic they read,
  :func:`~fedunlearn.attacks.calibrated.logit_confidence`;
* :mod:`~fedunlearn.attacks.dp_audit`: the one-run empirical DP audit (a lower bound on
  epsilon from canaries, Steinke et al. 2023);
* :mod:`~fedunlearn.attacks.forgetting`: distribution-level forgetting scores of a
  method against a retrain ensemble (outside the ensemble's interval, Gaussian KLoM,
  the NeurIPS 2023 unlearning challenge's epsilon and score);
* :class:`~fedunlearn.attacks.attacker.Attacker`: runs them all on every model it may
  query; :mod:`~fedunlearn.attacks.wire` carries a client attacker's query and scores.
  The harness's side, which holds the truth, is :mod:`fedunlearn.evaluation.leakage`.

May import: :mod:`fedunlearn.data`, :mod:`fedunlearn.learning` (never the harness's
truth in :mod:`fedunlearn.data.world` or :mod:`fedunlearn.evaluation`).
"""

from fedunlearn.attacks.access import FullAccess, LabelAccess, ModelAccess
from fedunlearn.attacks.calibrated import (
    LiRA,
    ULiRA,
    client_scores,
    fit_gaussians,
    logit_confidence,
    logit_confidence_from_proba,
)
from fedunlearn.attacks.deletion import DeletionInference
from fedunlearn.attacks.dp_audit import (
    OneRunAudit,
    one_run_audit,
    one_run_epsilon,
    one_run_p_value,
    randomized_response_scores,
)
from fedunlearn.attacks.forgetting import (
    Estimate,
    ForgettingReport,
    challenge_epsilons,
    challenge_score,
    forgetting_report,
    gaussian_klom,
    outside_fraction,
)
from fedunlearn.attacks.gap import UnlearningGapAttack
from fedunlearn.attacks.membership import ConfidenceAttack, LabelOnlyAttack, LossAttack
from fedunlearn.attacks.metrics import AttackMetrics, attack_metrics
from fedunlearn.attacks.rmia import RMIA

__all__ = [
    "RMIA",
    "AttackMetrics",
    "ConfidenceAttack",
    "DeletionInference",
    "Estimate",
    "ForgettingReport",
    "FullAccess",
    "LabelAccess",
    "LabelOnlyAttack",
    "LiRA",
    "LossAttack",
    "ModelAccess",
    "OneRunAudit",
    "ULiRA",
    "UnlearningGapAttack",
    "attack_metrics",
    "challenge_epsilons",
    "challenge_score",
    "client_scores",
    "fit_gaussians",
    "forgetting_report",
    "gaussian_klom",
    "logit_confidence",
    "logit_confidence_from_proba",
    "one_run_audit",
    "one_run_epsilon",
    "one_run_p_value",
    "outside_fraction",
    "randomized_response_scores",
]
