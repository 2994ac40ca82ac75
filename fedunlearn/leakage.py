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
3. The harness turns scores into AUC, TPR at 1% and 0.1% FPR and advantage, for every
   attack on every model, the retrained reference included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from scipy.stats import rankdata
from torch import nn

from fedunlearn.arrays import Arrays, to_record
from fedunlearn.attacks.access import FullAccess, LabelAccess, ModelAccess, ReleasedAccess
from fedunlearn.attacks.attacker import Attacker, AttackSettings, CandidateView
from fedunlearn.attacks.metrics import attack_metrics
from fedunlearn.config import ExperimentConfig
from fedunlearn.data import ArrayDataset
from fedunlearn.federation import ClientRegistry, send_and_check
from fedunlearn.metrics import accuracy
from fedunlearn.requests import ForgetSet
from fedunlearn.scenario import FederatedData
from fedunlearn.training import derive_seed

ATTACK = "query.attack"
"""Ask an inference-attacker client to score candidates against the models it is sent."""

MEMBERSHIP_ATTACKS = ("mia_baseline", "mia_gap")


@dataclass(frozen=True)
class Candidates:
    """Candidate records and the truth about them (harness only)."""

    view: CandidateView
    membership_truth: np.ndarray
    deletion_truth: np.ndarray
    removed_clients: frozenset[int]
    canary_members: bool  # members are memorization canaries (the auditing game)


class LeakageUnavailableError(ValueError):
    """The audit cannot score this run (say why); the run's other results stand."""


def _sample(data: ArrayDataset, count: int, rng: np.random.Generator) -> ArrayDataset:
    if len(data) <= count:
        return data
    return data.subset(np.sort(rng.choice(len(data), size=count, replace=False)))


def _concat(parts: list[ArrayDataset]) -> ArrayDataset:
    return ArrayDataset(
        np.concatenate([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.ids for p in parts]),
    )


def _shuffled(
    positives: ArrayDataset, negatives: ArrayDataset, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """((inputs, labels), truth) of both sets together, in a seeded random order."""
    order = rng.permutation(len(positives) + len(negatives))
    x = np.concatenate([positives.x, negatives.x])[order]
    y = np.concatenate([positives.y, negatives.y])[order]
    truth = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])[order]
    return (x, y), truth


def forgotten_records(world: FederatedData, forgotten: ForgetSet) -> ArrayDataset:
    """Everything ``forgotten`` names, as records."""
    parts = [world.client(c) for c in sorted(forgotten.clients)]
    parts += [world.records(c, np.asarray(ids)) for c, ids in forgotten.records]
    parts = [part for part in parts if len(part)]
    if not parts:
        raise LeakageUnavailableError(
            "the forgotten records are unknown to the harness (nothing was forgotten, or "
            "only records a client crafted or never held), so there is no member to score"
        )
    return _concat(parts)


def split_held_out(
    test: ArrayDataset, aux_fraction: float, seed: int
) -> tuple[ArrayDataset, ArrayDataset]:
    """(observer's own data, evaluation pool): a seeded split of the held-out records."""
    order = np.random.default_rng(seed).permutation(len(test))
    cut = int(aux_fraction * len(test))
    return test.subset(np.sort(order[:cut])), test.subset(np.sort(order[cut:]))


def build_candidates(
    config: ExperimentConfig,
    world: FederatedData,
    forgotten: ForgetSet,
    pool: ArrayDataset,
    skip_clients: set[int],
) -> Candidates:
    """Members, non-members, deleted and retained records, client samples; and truth."""
    a = config.attack
    rng = np.random.default_rng(derive_seed(config.seed, "attack-candidates") % 2**32)
    removed_records = forgotten_records(world, forgotten)
    memorized = removed_records.subset(
        np.flatnonzero(np.isin(removed_records.ids, world.memorization_ids))
    )
    if len(memorized):
        # Memorization canaries against twins drawn the same way but never trained on.
        members = _sample(memorized, a.candidates, rng)
        nonmembers = _sample(world.memorization_holdout, len(members), rng)
    else:
        # Ordinary records: the backdoor canary generalises to every triggered input, so
        # it says nothing about membership of a record; leave it out.
        ordinary = removed_records.without_ids(world.canary_ids)
        if not len(ordinary):
            raise LeakageUnavailableError(
                "every forgotten record is a backdoor canary: against clean non-members "
                "membership inference would measure the trigger; set canary.memorization "
                "> 0 for canaries made to be scored"
            )
        members = _sample(ordinary, a.candidates, rng)
        nonmembers = _sample(pool, len(members), rng)
    deleted = _sample(removed_records, a.candidates, rng)
    forgotten_ids = set(removed_records.ids.tolist())
    stay = [
        world.client(c).without_ids(np.asarray(sorted(forgotten_ids)))
        for c in range(len(world.clients))
        if c not in forgotten.clients and c not in skip_clients
    ]
    if not stay:
        raise LeakageUnavailableError(
            "every client the attacker could compare with was forgotten: no retained records"
        )
    retained = _sample(_concat(stay), len(deleted), rng)
    clients = {}
    for c in range(len(world.clients)):
        if c in skip_clients:
            continue
        data = (
            world.records(c, np.asarray(forgotten.records_of(c)))
            if forgotten.records_of(c)
            else world.client(c)
        )
        sample = _sample(data, a.client_samples, rng)
        clients[c] = (sample.x, sample.y)
    removed = set(forgotten.clients) | {c for c, _ in forgotten.records}
    # Shuffled, so the order the attacker receives the candidates in is no clue.
    membership, membership_truth = _shuffled(members, nonmembers, rng)
    deletion, deletion_truth = _shuffled(deleted, retained, rng)
    return Candidates(
        view=CandidateView(membership=membership, deletion=deletion, clients=clients),
        membership_truth=membership_truth,
        deletion_truth=deletion_truth,
        removed_clients=frozenset(removed - skip_clients),
        canary_members=bool(len(memorized)),
    )


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


# ---------------------------------------------------------------- the wire (client attacker)


def encode_query(
    models: dict[str, Arrays], view: CandidateView, settings: AttackSettings
) -> RecordDict:
    """The ``query.attack`` message content."""
    content = RecordDict({f"model/{label}": to_record(arrays) for label, arrays in models.items()})
    content["candidates/membership"] = _xy_record(*view.membership)
    content["candidates/deletion"] = _xy_record(*view.deletion)
    for c, xy in view.clients.items():
        content[f"candidates/client/{c}"] = _xy_record(*xy)
    content["config"] = ConfigRecord(
        {k: v for k, v in settings.__dict__.items()} | {"labels": list(models)}
    )
    return content


def _xy_record(x: np.ndarray, y: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"x": Array(np.ascontiguousarray(x)), "y": Array(np.ascontiguousarray(y))})


def decode_query(content: RecordDict) -> tuple[dict[str, Arrays], CandidateView, AttackSettings]:
    """Inverse of :func:`encode_query` (on the attacking client)."""
    from fedunlearn.arrays import from_record

    records = content.array_records
    config = dict(content.config_records["config"])
    labels = list(config.pop("labels"))
    models = {label: from_record(records[f"model/{label}"]) for label in labels}

    def xy(key: str) -> tuple[np.ndarray, np.ndarray]:
        return records[key]["x"].numpy(), records[key]["y"].numpy()

    clients = {
        int(k.rsplit("/", 1)[1]): xy(k) for k in records if k.startswith("candidates/client/")
    }
    view = CandidateView(xy("candidates/membership"), xy("candidates/deletion"), clients)
    return models, view, AttackSettings(**config)


def encode_scores(
    scores: dict[str, np.ndarray], clients: dict[str, dict[int, float]]
) -> RecordDict:
    record = ArrayRecord({k: Array(np.asarray(v, dtype=np.float64)) for k, v in scores.items()})
    ranks = ConfigRecord(
        {f"{label}/{c}": float(s) for label, by in clients.items() for c, s in by.items()}
    )
    return RecordDict({"scores": record, "client-scores": ranks})


def decode_scores(content: RecordDict) -> tuple[dict[str, np.ndarray], dict[str, dict[int, float]]]:
    scores = {k: v.numpy() for k, v in content["scores"].items()}
    clients: dict[str, dict[int, float]] = {}
    for key, value in content["client-scores"].items():
        label, _, c = key.rpartition("/")
        clients.setdefault(label, {})[int(c)] = float(value)
    return scores, clients


# ---------------------------------------------------------------- the audit


@dataclass
class LeakageReport:
    """Attack metrics by attack and model, ROC curves, client ranks."""

    metrics: dict[str, dict[str, dict[str, float]]]
    roc: dict[str, dict[str, dict[str, list[float]]]]
    setup: dict[str, Any]
    released_accuracy: dict[str, float] = field(default_factory=dict)

    def columns_for(self, label: str, reference: str) -> dict[str, float]:
        """Per-method columns of the sweep table."""
        out: dict[str, float] = {}
        names = {"mia_baseline": "mia", "mia_gap": "gap", "deletion_records": "deletion"}
        for attack, short in names.items():
            by_model = self.metrics.get(attack, {})
            if label in by_model:
                out[f"{short}_auc"] = by_model[label]["auc"]
                out[f"{short}_advantage"] = by_model[label]["advantage"]
            if reference in by_model:
                out[f"reference_{short}_auc"] = by_model[reference]["auc"]
            if "original" in by_model:
                out[f"original_{short}_auc"] = by_model["original"]["auc"]
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
    report.released_accuracy = {
        label: accuracy(FullAccess(new_model, arrays).logits(world.test.x), world.test.y)
        for label, arrays in models.items()
    }
    return report


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


def score_report(
    scores: dict[str, np.ndarray],
    client_scores: dict[str, dict[int, float]],
    candidates: Candidates,
    config: ExperimentConfig,
) -> LeakageReport:
    """Turn the attacker's scores into metrics with the harness's truth."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    roc: dict[str, dict[str, dict[str, list[float]]]] = {}
    for key, values in scores.items():
        attack, _, label = key.partition("/")
        truth = (
            candidates.membership_truth
            if attack in MEMBERSHIP_ATTACKS
            else candidates.deletion_truth
        )
        result = attack_metrics(values, truth)
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
    }
    return LeakageReport(metrics, roc, setup)


def write_leakage(report: LeakageReport, run_dir: Path, figures: bool) -> None:
    """``attacks.json`` (metrics and ROC curves) and ``attacks_roc.png``."""
    (run_dir / "attacks.json").write_text(
        json.dumps({"metrics": report.metrics, "roc": report.roc, "setup": report.setup}, indent=1)
    )
    if not figures or not report.roc:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = sorted(report.roc)
    fig, axes = plt.subplots(1, len(attacks), figsize=(5 * len(attacks), 4.6), squeeze=False)
    for ax, attack in zip(axes[0], attacks, strict=True):
        for label, curve in sorted(report.roc[attack].items()):
            auc = report.metrics[attack][label]["auc"]
            ax.plot(curve["fpr"], curve["tpr"], label=f"{label} (AUC {auc:.2f})")
        ax.plot([0, 1], [0, 1], "k:", linewidth=1)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlim(0, 1)
        ax.set_title(attack)
        ax.set_xlabel("false positive rate (log below 1%)")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run_dir / "attacks_roc.png", dpi=130)
    plt.close(fig)
