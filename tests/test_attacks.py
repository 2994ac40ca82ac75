"""Inference attacks: metrics against scikit-learn, attack signals on hand-made models,
and the attacker seeing nothing but its own data, the models and the candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from fedunlearn.attacks.access import AccessDeniedError, LabelAccess
from fedunlearn.attacks.attacker import Attacker
from fedunlearn.attacks.deletion import DeletionInference
from fedunlearn.attacks.membership import LabelOnlyAttack, LossAttack
from fedunlearn.attacks.metrics import attack_metrics, tpr_at_fpr
from fedunlearn.leakage import build_candidates, settings_of, split_held_out
from fedunlearn.scenario import federated_data
from tests.conftest import small_config


def test_metrics_match_scikit_learn_on_hand_made_scores() -> None:
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.35, 0.1, 0.7, 0.3, 0.2, 0.15, 0.05, 0.0])
    m = attack_metrics(scores, truth)
    assert m.auc == pytest.approx(roc_auc_score(truth, scores))
    fpr, tpr, _ = roc_curve(truth, scores)
    assert m.fpr == pytest.approx(list(fpr)) and m.tpr == pytest.approx(list(tpr))
    # By hand: at threshold 0.8, TPR 2/4 and FPR 0: advantage >= 0.5; at 0.35,
    # TPR 3/4, FPR 1/6: 0.583; that is the best.
    assert m.advantage == pytest.approx(3 / 4 - 1 / 6)
    assert m.tpr_at_1pct == pytest.approx(0.5)  # no false positive allowed at 1% of 6
    assert tpr_at_fpr(np.array([0.0, 0.2, 1.0]), np.array([0.1, 0.6, 1.0]), 0.25) == 0.6


def test_perfect_and_useless_scores() -> None:
    truth = np.array([1, 1, 0, 0])
    perfect = attack_metrics(np.array([2.0, 3.0, 0.0, 1.0]), truth)
    assert perfect.auc == 1.0 and perfect.advantage == 1.0 and perfect.tpr_at_01pct == 1.0
    constant = attack_metrics(np.zeros(4), truth)
    assert constant.auc == 0.5 and constant.advantage == 0.0
    with pytest.raises(ValueError, match="both positive and negative"):
        attack_metrics(np.zeros(2), np.array([1, 1]))


class TableModel:
    """A model given by a table: its class probabilities for each of a few inputs."""

    def __init__(self, table: dict[float, list[float]]) -> None:
        self.table = table

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.array([self.table[float(round(float(v.ravel()[0])))] for v in x])

    def predict_label(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def inputs(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32).reshape(-1, 1)


def test_loss_attack_scores_log_probability_of_the_label() -> None:
    model = TableModel({0.0: [0.9, 0.1], 1.0: [0.4, 0.6]})
    scores = LossAttack().score(model, inputs(0, 1), np.array([0, 0]))
    np.testing.assert_allclose(scores, np.log([0.9, 0.4]))
    with pytest.raises(AccessDeniedError):
        LossAttack().score(LabelAccess(model), inputs(0), np.array([0]))


def test_deletion_inference_scores_the_drop_in_fit_and_ranks_clients() -> None:
    before = TableModel({0.0: [0.9, 0.1], 1.0: [0.8, 0.2], 2.0: [0.5, 0.5]})
    after = TableModel({0.0: [0.3, 0.7], 1.0: [0.8, 0.2], 2.0: [0.5, 0.5]})
    attack = DeletionInference()
    scores = attack.score(before, after, inputs(0, 1, 2), np.array([0, 0, 0]))
    np.testing.assert_allclose(scores, [np.log(0.9 / 0.3), 0.0, 0.0], atol=1e-12)
    ranking = attack.rank_clients(
        before, after, {5: (inputs(1, 2), np.array([0, 0])), 7: (inputs(0, 1), np.array([0, 0]))}
    )
    assert [c for c, _ in ranking] == [7, 5]


def test_label_only_attack_uses_labels_alone() -> None:
    model = TableModel({0.0: [0.9, 0.1], 1.0: [0.2, 0.8]})

    class Denying(LabelAccess):
        pass

    scores = LabelOnlyAttack(copies=4, sigma=1e-6).score(
        Denying(model), inputs(0, 1), np.array([0, 0])
    )
    np.testing.assert_allclose(scores, [2.0, 0.0])  # correct and robust, vs neither


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    from fedunlearn.simulation import simulate

    tmp = tmp_path_factory.mktemp("attacks")
    config = small_config(
        tmp,
        "canary.memorization=30",
        "attack.enabled=true",
        "attack.shadow_models=2",
        "attack.shadow_epochs=3",
    )
    return config, simulate(config, show_progress=False)


def test_the_audit_scores_every_attack_on_every_model(trained) -> None:
    _, result = trained
    attacks = result.metrics["attacks"]
    assert set(attacks) == {"mia_baseline", "mia_gap", "deletion_records", "deletion_client"}
    assert set(attacks["mia_baseline"]) == {"original", "federaser", "retrain"}
    assert set(attacks["mia_gap"]) == {"federaser", "retrain"}
    for by_model in (attacks["mia_baseline"], attacks["mia_gap"], attacks["deletion_records"]):
        for summary in by_model.values():
            assert 0 <= summary["auc"] <= 1 and 0 <= summary["advantage"] <= 1
    assert (result.run_dir / "attacks.json").is_file()
    assert (result.run_dir / "attacks_roc.png").is_file()
    columns = result.metrics["table_columns"]["federaser"]
    assert {"mia_auc", "reference_mia_auc", "gap_auc", "reference_gap_auc"} <= set(columns)


def test_the_attacker_never_reads_the_harness_truth(trained, monkeypatch) -> None:
    # Score once; then hide every source of truth (the scenario, with its canary and
    # memorization ids and client partitions) and score again with the same view: an
    # attacker that peeked would fail or change its scores.
    config, result = trained
    world = federated_data(config)
    from fedunlearn.requests import ForgetSet

    own, pool = split_held_out(world.test, 0.5, 3)
    candidates = build_candidates(config, world, ForgetSet.of({0}), pool, set())
    from fedunlearn.attacks.access import FullAccess
    from fedunlearn.models import build_model

    def new_model():
        return build_model("mlp", world.info.input_shape, world.info.num_classes, 32, config.seed)

    accesses = {k: FullAccess(new_model, v) for k, v in result.models.items()}
    settings = settings_of(config, label_only=False)
    first, _ = Attacker(own, new_model, settings).score_all(accesses, candidates.view)

    def forbidden(*args, **kwargs):
        raise AssertionError("the attacker read the scenario's ground truth")

    import fedunlearn.scenario

    monkeypatch.setattr(fedunlearn.scenario, "federated_data", forbidden)
    monkeypatch.setattr(fedunlearn.scenario, "_build", forbidden)
    for attr in ("canary_ids", "memorization_ids", "clients", "memorization_holdout"):
        monkeypatch.setattr(type(world), attr, property(forbidden), raising=False)
    second, _ = Attacker(own, new_model, settings).score_all(accesses, candidates.view)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_a_client_attacker_attacks_with_its_own_partition(tmp_path: Path) -> None:
    from fedunlearn.simulation import simulate

    config = small_config(
        tmp_path,
        "canary.memorization=30",
        "attack.enabled=true",
        "attack.attacker=client",
        "attack.client=3",
        'roles.3="inference-attacker"',
        "attack.shadow_models=2",
        "attack.shadow_epochs=3",
    )
    metrics = simulate(config, show_progress=False).metrics
    assert metrics["attack_setup"]["attacker"] == "client"
    assert set(metrics["attacks"]["mia_baseline"]) == {"original", "federaser", "retrain"}


def test_an_attacking_client_must_have_an_attacker_role(tmp_path: Path) -> None:
    from fedunlearn.components import resolve_components
    from fedunlearn.config import ConfigError

    config = small_config(
        tmp_path, "attack.enabled=true", "attack.attacker=client", "attack.client=3"
    )
    with pytest.raises(ConfigError, match="does not attack"):
        resolve_components(config)
