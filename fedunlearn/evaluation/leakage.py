"""The leakage audit (phase 6): inference attacks on the released models, scored by the
harness against the truth only it holds.

1. The harness draws candidate records: for membership, the forgotten client's
   memorization canaries (members) against twins drawn the same way and never trained
   on, or, without canaries, forgotten ordinary records against held-out records
   (the backdoor canary is left out: triggered members against clean non-members
   would measure the trigger, not membership); for deletion inference, forgotten
   records against records of clients that stay; for client deletion inference, a
   few records of every client.
2. The attacker (:class:`~fedunlearn.attacks.attacker.Attacker`) gets the candidates'
   inputs and labels, never their truth, and scores them: an outside observer here,
   through query access to the released models; an inference-attacker client through
   a ``query.attack`` message carrying the weights it would see.
3. The harness turns scores into AUC, TPR at 1% and 0.1% FPR (where the negatives
   resolve them) and advantage, with bootstrap confidence intervals, for every attack
   on every model, the retrained reference included; it keeps the raw scores with the
   truth, record ids and holders in ``attack_scores.npz``
   (:mod:`fedunlearn.evaluation.archive`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Message
from flwr.serverapp import Grid
from scipy.stats import rankdata
from torch import nn

from fedunlearn.attacks.access import FullAccess, LabelAccess, ModelAccess, ReleasedAccess
from fedunlearn.attacks.attacker import Attacker, AttackSettings
from fedunlearn.attacks.metrics import CI_LEVEL, attack_metrics
from fedunlearn.attacks.wire import decode_scores, encode_query
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import FederatedData
from fedunlearn.defenses.release import release_weights
from fedunlearn.evaluation.archive import attack_arrays, write_attack_scores
from fedunlearn.evaluation.candidates import (
    Candidates,
    build_candidates,
    split_held_out,
)
from fedunlearn.federation.registry import ClientRegistry, send_and_check
from fedunlearn.learning.arrays import Arrays
from fedunlearn.learning.metrics import accuracy
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import ForgetSet

ATTACK = "query.attack"
"""Ask an inference-attacker client to score candidates against the models it is sent."""

MEMBERSHIP_ATTACKS = ("mia_baseline", "mia_gap")

COLUMN_FIGURES = (
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "advantage",
    "tpr_at_1pct",
    "tpr_at_1pct_ci_low",
    "tpr_at_1pct_ci_high",
    "tpr_at_01pct",
    "tpr_at_01pct_ci_low",
    "tpr_at_01pct_ci_high",
    "lowest_fpr",
)
"""Figures of a method's model that go to the sweep's table, as ``<attack>_<figure>``
(the intervals are bootstrap intervals, NaN where the negatives cannot resolve the FPR)."""

COLUMN_NAMES = {"mia_baseline": "mia", "mia_gap": "gap", "deletion_records": "deletion"}
"""Short names of the attacks in table columns."""

OTHER_COLUMNS = ("client_top1", "released_accuracy")

CALIBRATED_ATTACKS = ("lira_online", "lira_offline", "rmia_online", "rmia_offline", "ulira")
"""Calibrated attacks (``[audit]``) whose figures go to the table too."""

CALIBRATED_FIGURES = tuple(f for f in COLUMN_FIGURES if f != "advantage")
"""Figures of a calibrated attack that go to the table, as ``<attack>_<figure>``; the
``lowest_fpr`` says which TPR columns the run could resolve."""


def is_leakage_column(column: str) -> bool:
    """Whether a table column comes from the leakage audit
    (:meth:`LeakageReport.columns_for`), so a re-audit replaces it."""
    for short in COLUMN_NAMES.values():
        if column.startswith(f"{short}_") or column in (
            f"reference_{short}_auc",
            f"original_{short}_auc",
        ):
            return True
    calibrated = (*CALIBRATED_ATTACKS, "client_lira", "forgetting")
    return column in OTHER_COLUMNS or column.startswith(tuple(f"{a}_" for a in calibrated))


def client_ranking_metrics(
    scores: dict[int, float], removed: frozenset[int] | set[int]
) -> dict[str, float]:
    """How well per-client scores single out the removed clients, ties shared fairly.

    ``top1``: the share of removed clients among those tied at the top score (a model
    that says nothing, all scores equal, earns the chance level, not a win by client
    id); ``best_rank``: the best average rank (ties take the mean of their ranks) of a
    removed client, 1 being first.
    """
    if not scores:
        return {"top1": float("nan"), "best_rank": float("nan"), "candidates": 0.0}
    top = max(scores.values())
    tied = [c for c, s in scores.items() if s == top]
    clients = list(scores)
    rank_of = dict(zip(clients, rankdata([-scores[c] for c in clients]), strict=True))
    ranks = [float(rank_of[c]) for c in removed if c in scores]
    return {
        "top1": sum(c in removed for c in tied) / len(tied),
        "best_rank": float(min(ranks)) if ranks else float("nan"),
        "candidates": float(len(scores)),
    }


def settings_of(
    config: ExperimentConfig, label_only: bool, canary_members: bool = True
) -> AttackSettings:
    """The attacker's settings; it draws canaries of its own for its shadow pairs only
    when the members it scores are memorization canaries (it knows the game)."""
    a, t = config.attack, config.training
    return AttackSettings(
        label_only=label_only,
        shadow_models=a.shadow_models,
        shadow_epochs=a.shadow_epochs,
        features=a.features,
        classifier=a.classifier,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        momentum=t.momentum,
        seed=derive_seed(config.seed, "attacker") % 2**31,
        canaries=(
            2 * config.canary.memorization if config.canary.enabled and canary_members else 0
        ),
    )


# ---------------------------------------------------------------- the audit


@dataclass
class LeakageReport:
    """Attack metrics by attack and model, ROC curves, client ranks; and the raw data
    (``arrays``, the content of ``attack_scores.npz``)."""

    metrics: dict[str, dict[str, dict[str, float]]]
    roc: dict[str, dict[str, dict[str, list[float]]]]
    setup: dict[str, Any]
    released_accuracy: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    candidates: Candidates | None = None
    """The candidates scored, with their truth (for the calibrated attacks)."""
    population: ArrayDataset | None = None
    """The observer's own held-out records (RMIA's population; observer only)."""
    released: dict[str, Arrays] = field(default_factory=dict)
    """The models as released (``release.param_noise`` applied), by label."""

    def calibrated_columns(self, label: str) -> dict[str, float]:
        """Columns of the calibrated attacks (``[audit]``) for one model: AUC and TPR at
        low FPR of each, the per-client test, the forgetting scores."""
        out: dict[str, float] = {}
        for attack in CALIBRATED_ATTACKS:
            figures = self.metrics.get(attack, {}).get(label, {})
            for key in CALIBRATED_FIGURES:
                if key in figures:
                    out[f"{attack}_{key}"] = figures[key]
        client_test = self.metrics.get("client_lira", {}).get(label)
        if client_test:
            out["client_lira_neglog_p"] = client_test["neglog_p"]
        forgetting = self.metrics.get("forgetting", {}).get(label, {})
        for key, value in forgetting.items():
            if key.split("_ci_")[0] in ("outside", "klom", "challenge"):
                out[f"forgetting_{key}"] = value
        return out

    def columns_for(self, label: str, reference: str) -> dict[str, float]:
        """Per-method columns of the sweep table."""
        out: dict[str, float] = {}
        for attack, short in COLUMN_NAMES.items():
            by_model = self.metrics.get(attack, {})
            if label in by_model:
                figures = by_model[label]
                for key in COLUMN_FIGURES:
                    if key in figures:
                        out[f"{short}_{key}"] = figures[key]
            if reference in by_model:
                out[f"reference_{short}_auc"] = by_model[reference]["auc"]
            if "original" in by_model:
                out[f"original_{short}_auc"] = by_model["original"]["auc"]
        out.update(self.calibrated_columns(label))
        client = self.metrics.get("deletion_client", {}).get(label)
        if client:
            out["client_top1"] = client["top1"]
        if label in self.released_accuracy:
            out["released_accuracy"] = self.released_accuracy[label]
        return out


def run_leakage_audit(
    config: ExperimentConfig,
    world: FederatedData,
    models: dict[str, Arrays],
    forgotten: ForgetSet,
    new_model: Callable[[], nn.Module],
    grid: Grid | None = None,
    registry: ClientRegistry | None = None,
) -> LeakageReport:
    """Score every attack on every model; ``models`` holds ``original`` and the rest."""
    a, r = config.attack, config.release
    label_only = a.attacker == "observer" and (a.access == "label" or r.mode == "label")
    models = release_weights(models, r.param_noise, config.seed, new_model)
    if a.attacker == "observer":
        own, pool = split_held_out(
            world.test, a.aux_fraction, derive_seed(config.seed, "aux") % 2**32
        )
        candidates = build_candidates(config, world, forgotten, pool, skip_clients=set())
        settings = settings_of(config, label_only, candidates.canary_members)
        accesses: dict[str, ModelAccess] = {}
        for label, arrays in models.items():
            released = ReleasedAccess(
                FullAccess(new_model, arrays), r.mode, r.k, r.decimals, r.temperature
            )
            accesses[label] = LabelAccess(released) if label_only else released
        scores, client_scores = Attacker(own, new_model, settings).score_all(
            accesses, candidates.view
        )
    else:
        if grid is None or registry is None:
            raise ValueError("a client attacker needs the grid and the client registry")
        candidates = build_candidates(config, world, forgotten, world.test, skip_clients={a.client})
        settings = settings_of(config, label_only, candidates.canary_members)
        message = Message(
            encode_query(models, candidates.view, settings),
            dst_node_id=registry.node_of(a.client),
            message_type=ATTACK,
        )
        (reply,) = send_and_check(
            grid, [message], timeout=config.federation.timeout, what=f"attack by client {a.client}"
        )
        scores, client_scores = decode_scores(reply.content)
    report = score_report(scores, client_scores, candidates, config)
    report.candidates, report.released = candidates, models
    if a.attacker == "observer":
        report.population = own
    report.released_accuracy = {
        label: accuracy(FullAccess(new_model, arrays).logits(world.test.x), world.test.y)
        for label, arrays in models.items()
    }
    return report


def score_report(
    scores: dict[str, np.ndarray],
    client_scores: dict[str, dict[int, float]],
    candidates: Candidates,
    config: ExperimentConfig,
) -> LeakageReport:
    """Turn the attacker's scores into metrics with the harness's truth.

    Each attack on each model gets its own seeded bootstrap (``attack.bootstrap``
    resamples), so adding a model or an attack changes no other interval.
    """
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    roc: dict[str, dict[str, dict[str, list[float]]]] = {}
    resamples = config.attack.bootstrap
    for key, values in scores.items():
        attack, _, label = key.partition("/")
        truth = (
            candidates.membership_truth
            if attack in MEMBERSHIP_ATTACKS
            else candidates.deletion_truth
        )
        seed = derive_seed(config.seed, "bootstrap", attack, label)
        result = attack_metrics(values, truth, resamples, seed)
        metrics.setdefault(attack, {})[label] = result.summary()
        roc.setdefault(attack, {})[label] = {"fpr": result.fpr, "tpr": result.tpr}
    for label, by_client in client_scores.items():
        metrics.setdefault("deletion_client", {})[label] = client_ranking_metrics(
            by_client, candidates.removed_clients
        )
    setup = {
        "release": config.release.mode,
        "param_noise": config.release.param_noise,
        "attacker": config.attack.attacker,
        "access": config.attack.access if config.attack.attacker == "observer" else "weights",
        "members": int(candidates.membership_truth.sum()),
        "non_members": int((1 - candidates.membership_truth).sum()),
        "deleted": int(candidates.deletion_truth.sum()),
        "retained": int((1 - candidates.deletion_truth).sum()),
        "bootstrap": resamples,
        "ci_level": CI_LEVEL if resamples else None,
    }
    return LeakageReport(
        metrics, roc, setup, arrays=attack_arrays(scores, client_scores, candidates)
    )


def write_leakage(report: LeakageReport, run_dir: Path) -> None:
    """``attacks.json`` (metrics and ROC curves) and ``attack_scores.npz`` (the raw
    scores with their truth: :mod:`fedunlearn.evaluation.archive`)."""
    (run_dir / "attacks.json").write_text(
        json.dumps(
            _strict({"metrics": report.metrics, "roc": report.roc, "setup": report.setup}),
            indent=1,
        )
    )
    if report.arrays:
        write_attack_scores(report.arrays, run_dir)


def _strict(value: Any) -> Any:
    """NaN as None, so the JSON is strict (an unresolved TPR is ``null``)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value
