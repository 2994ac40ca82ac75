"""The one-run DP audit of a run (Steinke, Nasr and Jagielski, NeurIPS 2023): an
empirical lower bound on epsilon from canaries, next to the accountant's epsilon.

With ``privacy.audit_canaries = m`` the world holds m fresh noise canaries, each put
with probability 1/2 into the data of the audit client (the first requester;
:func:`~fedunlearn.data.world.with_audit_canaries`). After the run the harness, which
alone knows which canaries went in, scores every canary and runs
:func:`~fedunlearn.attacks.dp_audit.one_run_audit`:

* **training**: score ``phi`` = the logit confidence of the canary's label on the
  trained (original) model (higher: "in"); the bound faces the audit client's training
  epsilon (local DP) or the central epsilon (central DP);
* **unlearning release**, one audit per method (the reference included) when the
  audit client was forgotten whole: score ``phi_original - phi_method`` (a removed
  canary's confidence drops); the bound faces the method's certified epsilon
  (:meth:`~fedunlearn.unlearning.method.UnlearningMethod.certified_privacy`), if it has
  one. The scores read both models, so this audits the release of the pair (before,
  after), which training's own leakage also bounds.

``dp_audit.npz`` keeps what is needed to recompute every bound from files
(:func:`write_dp_audit`): ``ids``, ``labels`` and ``included`` (bool) of the m canaries,
``phi/<model>`` per model, ``scores/training`` and ``scores/unlearning/<method>``; with
``delta`` and ``beta`` of ``metrics.json``'s ``dp_audit`` entry::

    one_run_audit(f["scores/training"], f["included"], delta=..., beta=...)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from fedunlearn.archives import read_archive, write_archive
from fedunlearn.attacks.access import FullAccess
from fedunlearn.attacks.calibrated import logit_confidence
from fedunlearn.attacks.dp_audit import OneRunAudit, one_run_audit
from fedunlearn.data.world import FederatedData
from fedunlearn.learning.arrays import Arrays

FILE = "dp_audit.npz"

SCORE = "logit confidence of the canary's label, log(p_y / (1 - p_y))"


def audit_entry(result: OneRunAudit) -> dict[str, Any]:
    """One audit as ``metrics.json`` keeps it: m canaries, r guesses, v right, the bound
    and the epsilon it faces, at (beta, delta), with the (k+, k-) that reached it."""
    return {
        "m": result.canaries,
        "r": result.guesses,
        "v": result.correct,
        "k_plus": result.k_plus,
        "k_minus": result.k_minus,
        "epsilon_lower": result.epsilon_lower,
        "epsilon_accounted": result.epsilon_accounted,
        "beta": result.beta,
        "delta": result.delta,
        "grid_size": result.grid_size,
        "correction": result.correction,
    }


@dataclass
class DPAuditReport:
    """The audits of one run and their raw data.

    Attributes
    ----------
    client : int
        The audit client, whose data holds the included canaries.
    ids, labels, included : np.ndarray
        The canaries' record ids, labels and inclusion bits.
    phi : dict of np.ndarray
        Each model's score of every canary (:data:`SCORE`), by label.
    training : dict
        The audit of training (:func:`audit_entry`).
    unlearning : dict of dict
        The audit of each method's release, by label.
    unlearning_skipped : str
        Why there is no unlearning audit (empty when there is).
    """

    client: int
    ids: np.ndarray
    labels: np.ndarray
    included: np.ndarray
    phi: dict[str, np.ndarray]
    training: dict[str, Any]
    unlearning: dict[str, dict[str, Any]] = field(default_factory=dict)
    unlearning_skipped: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``dp_audit`` entry of ``metrics.json``."""
        out: dict[str, Any] = {
            "client": self.client,
            "canaries": int(self.included.size),
            "included": int(self.included.sum()),
            "score": SCORE,
            "file": FILE,
            "training": self.training,
            "unlearning": self.unlearning,
        }
        if self.unlearning_skipped:
            out["unlearning_skipped"] = self.unlearning_skipped
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The content of ``dp_audit.npz``."""
        out = {"ids": self.ids, "labels": self.labels, "included": self.included}
        out.update({f"phi/{label}": v for label, v in self.phi.items()})
        out["scores/training"] = self.phi["original"]
        for label in self.unlearning:
            out[f"scores/unlearning/{label}"] = self.phi["original"] - self.phi[label]
        return out


def canary_phi(
    new_model: Callable[[], nn.Module], weights: Arrays, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Every canary's score on one model: the logit confidence of its label."""
    return logit_confidence(FullAccess(new_model, weights).logits(x), y)


def run_dp_audit(
    world: FederatedData,
    models: Mapping[str, Arrays],
    new_model: Callable[[], nn.Module],
    *,
    training_epsilon: float | None,
    certified: Mapping[str, tuple[float, float] | None],
    forgotten_clients: Collection[int],
    delta: float,
    beta: float,
) -> DPAuditReport:
    """Audit training and every method's release with the world's audit canaries.

    Parameters
    ----------
    world : FederatedData
        A world with audit canaries (``privacy.audit_canaries > 0``).
    models : mapping of str to Arrays
        Final weights by label, ``original`` among them.
    new_model : callable
        A fresh model of the run's architecture.
    training_epsilon : float or None
        The epsilon training's bound faces: the audit client's (local DP) or the
        central one.
    certified : mapping of str to (epsilon, delta) or None
        Each method's certified guarantee (None: it certifies none).
    forgotten_clients : collection of int
        The clients forgotten whole: the release is audited only if the audit client is
        among them (else its canaries were never removed).
    delta, beta : float
        The delta of the DP claim (``privacy.delta``) and the confidence ``1 - beta``.
    """
    canaries = world.audit_canaries
    if canaries is None or world.audit_client is None:
        raise ValueError("the world has no audit canaries (privacy.audit_canaries = 0)")
    if "original" not in models:
        raise ValueError("the DP audit needs the trained model, 'original'")
    included = np.asarray(world.audit_included, dtype=bool)
    phi = {
        label: canary_phi(new_model, weights, canaries.x, canaries.y)
        for label, weights in models.items()
    }
    training = one_run_audit(
        phi["original"], included, delta=delta, beta=beta, epsilon_accounted=training_epsilon
    )
    report = DPAuditReport(
        world.audit_client, canaries.ids, canaries.y, included, phi, audit_entry(training)
    )
    if world.audit_client not in set(forgotten_clients):
        report.unlearning_skipped = (
            f"client {world.audit_client} (which holds the canaries) was not forgotten whole, "
            "so no canary was removed"
        )
        return report
    for label in models:
        if label == "original":
            continue
        claim = certified.get(label)
        result = one_run_audit(
            phi["original"] - phi[label],
            included,
            delta=claim[1] if claim else delta,
            beta=beta,
            epsilon_accounted=claim[0] if claim else None,
        )
        report.unlearning[label] = audit_entry(result)
    return report


def write_dp_audit(report: DPAuditReport, run_dir: Path) -> Path:
    """Write ``dp_audit.npz`` whole (a temporary file renamed); return its path."""
    return write_archive(Path(run_dir) / FILE, report.arrays(), compress=False)


def read_dp_audit(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``dp_audit.npz`` (or the run folder that holds it)."""
    return read_archive(path, FILE)
