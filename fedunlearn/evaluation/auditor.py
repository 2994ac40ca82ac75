"""Audit models side by side against the retrained reference (phase 7).

The audit is the harness's job: it holds the ground truth (the forgotten clients'
data, the canary) that the server never sees. Each model gets:

* ``clean_accuracy``: accuracy on the server's test set;
* ``forget_accuracy``: accuracy on the forgotten clients' training data, as they held it
  (canary records keep their target-class labels);
* ``attack_success_rate``: share of triggered test inputs (true class not the target)
  classified as the canary's target class;
* ``l2_to_reference``: L2 distance of the trainable parameters to the reference model;
* ``kl_to_reference``: mean KL(reference || model) of the output distributions on the
  forgotten clients' data;
* ``<probe>_success_rate``: for each trigger a client role planted (e.g. ``poison`` of
  camouflaged poisoning, see ``ClientRole.audit_probes``), the share of test inputs with
  that trigger (true class not its target) classified as its target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from flwr.app import ArrayRecord
from torch import nn

from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.learning.arrays import Arrays, from_record, load_arrays, trainable_keys
from fedunlearn.learning.metrics import accuracy, attack_success_rate, mean_kl, parameter_distance
from fedunlearn.learning.training import predict_logits


@dataclass(frozen=True)
class ModelAudit:
    """Audit figures of one model (NaN where a figure does not apply)."""

    clean_accuracy: float
    forget_accuracy: float
    attack_success_rate: float
    l2_to_reference: float
    kl_to_reference: float
    probes: dict[str, float] = field(default_factory=dict)
    """``<probe>_success_rate`` of every trigger a role planted."""

    def as_dict(self) -> dict[str, float]:
        """Every figure, the probes' among them."""
        figures = asdict(self)
        probes = figures.pop("probes")
        return {**figures, **probes}


@dataclass(frozen=True)
class AuditData:
    """Ground truth an audit needs."""

    test: ArrayDataset
    forgotten: ArrayDataset
    triggered_test: ArrayDataset | None
    target_class: int
    probes: dict[str, tuple[ArrayDataset, int]] = field(default_factory=dict)
    """Triggered inputs and the class they target, by name (planted by client roles)."""


class Auditor:
    """Audits named models against one reference model.

    Parameters
    ----------
    new_model : callable
        Returns a fresh model of the experiment's architecture.
    data : AuditData
        Test set, forgotten data and canary inputs.
    reference : Arrays
        Weights of the reference (retrained) model.
    parameter_keys : sequence of str
        Trainable parameters (distance runs over these only).
    """

    def __init__(
        self,
        new_model: Callable[[], nn.Module],
        data: AuditData,
        reference: Arrays,
        parameter_keys: Sequence[str],
    ) -> None:
        self.new_model = new_model
        self.data = data
        self.reference = reference
        self.parameter_keys = list(parameter_keys)
        self._reference_forget_logits = self._logits(reference, data.forgotten.x)

    def _logits(self, arrays: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        model = self.new_model()
        load_arrays(model, arrays)
        return predict_logits(model, x)

    def audit(self, arrays: Arrays) -> ModelAudit:
        """Audit one model."""
        d = self.data
        forget_logits = self._logits(arrays, d.forgotten.x)
        asr = float("nan")
        if d.triggered_test is not None:
            asr = attack_success_rate(self._logits(arrays, d.triggered_test.x), d.target_class)
        probes = {
            f"{name}_success_rate": attack_success_rate(self._logits(arrays, data.x), target)
            for name, (data, target) in d.probes.items()
        }
        return ModelAudit(
            clean_accuracy=accuracy(self._logits(arrays, d.test.x), d.test.y),
            forget_accuracy=accuracy(forget_logits, d.forgotten.y),
            attack_success_rate=asr,
            l2_to_reference=parameter_distance(arrays, self.reference, self.parameter_keys),
            kl_to_reference=mean_kl(self._reference_forget_logits, forget_logits),
            probes=probes,
        )


def audit_models(
    models: Mapping[str, ArrayRecord | Mapping[str, np.ndarray]],
    *,
    reference: str,
    model_fn: Callable[[], nn.Module],
    test: tuple[np.ndarray, np.ndarray],
    forgotten: tuple[np.ndarray, np.ndarray],
    triggered: tuple[np.ndarray, int] | None = None,
) -> dict[str, dict[str, float]]:
    """Audit models side by side against the reference (retraining), from your own data.

    Parameters
    ----------
    models : mapping of label to ArrayRecord or arrays
        The models, ``reference`` among them (e.g. original, federaser, retrain).
    reference : str
        The label of the exact reference.
    model_fn : callable
        Returns a fresh model of the architecture (weights are loaded into it).
    test : (inputs, labels)
        Held-out data: clean accuracy.
    forgotten : (inputs, labels)
        The forgotten data as its owners held it: accuracy on it, KL to the reference.
    triggered : (inputs, target class), optional
        Inputs carrying a backdoor trigger and the class it maps to: attack success rate.

    Returns
    -------
    dict of label to figures
        ``clean_accuracy``, ``forget_accuracy``, ``attack_success_rate`` (NaN without
        ``triggered``), ``l2_to_reference``, ``kl_to_reference``.
    """
    weights = {
        k: from_record(v) if isinstance(v, ArrayRecord) else dict(v) for k, v in models.items()
    }
    if reference not in weights:
        raise ValueError(f"the reference {reference!r} is not among the models {sorted(weights)}")

    def dataset(x: np.ndarray, y: np.ndarray) -> ArrayDataset:
        return ArrayDataset(np.asarray(x), np.asarray(y), np.arange(len(y)))

    trigger = None
    target = 0
    if triggered is not None:
        inputs, target = triggered
        trigger = dataset(inputs, np.full(len(inputs), target))
    auditor = Auditor(
        model_fn,
        AuditData(dataset(*test), dataset(*forgotten), trigger, target),
        weights[reference],
        trainable_keys(model_fn()),
    )
    return {label: auditor.audit(arrays).as_dict() for label, arrays in weights.items()}
