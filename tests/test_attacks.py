"""Inference attacks: metrics against scikit-learn and hand-computed answers, attack
signals on hand-made models, and the attacker seeing nothing but its own data, the
models and the candidates."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import auc as area_under
from sklearn.metrics import roc_auc_score, roc_curve

import fedunlearn
from fedunlearn.attacks.access import AccessDeniedError, FullAccess, LabelAccess
from fedunlearn.attacks.attacker import Attacker, CandidateView
from fedunlearn.attacks.deletion import DeletionInference
from fedunlearn.attacks.membership import LabelOnlyAttack, LossAttack
from fedunlearn.attacks.metrics import attack_metrics, tpr_at_fpr
from fedunlearn.data.world import ClientPartitions, federated_data
from fedunlearn.evaluation.archive import read_attack_scores
from fedunlearn.evaluation.candidates import build_candidates, split_held_out
from fedunlearn.evaluation.leakage import settings_of
from fedunlearn.learning.models import build_model
from fedunlearn.unlearning.requests import ForgetSet
from tests.conftest import small_config


def _points(fpr, tpr) -> set[tuple[float, float]]:
    return {(round(float(f), 12), round(float(t), 12)) for f, t in zip(fpr, tpr, strict=True)}


def test_metrics_match_scikit_learn_on_hand_made_scores() -> None:
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.35, 0.1, 0.7, 0.3, 0.2, 0.15, 0.05, 0.0])
    m = attack_metrics(scores, truth)
    assert m.auc == pytest.approx(roc_auc_score(truth, scores))
    # By hand: of the 24 (member, non-member) pairs, 0.9 and 0.8 beat all 6, 0.35
    # beats 5 (not 0.7), 0.1 beats 2 (0.05, 0.0): 19 / 24.
    assert m.auc == pytest.approx(19 / 24)
    # The curve holds every corner of scikit-learn's and only points of the full one.
    fpr, tpr, _ = roc_curve(truth, scores)
    full = roc_curve(truth, scores, drop_intermediate=False)
    assert _points(fpr, tpr) <= _points(m.fpr, m.tpr) <= _points(*full[:2])
    # By hand: at threshold 0.8, TPR 2/4 and FPR 0: advantage >= 0.5; at 0.35,
    # TPR 3/4, FPR 1/6: 0.583; that is the best.
    assert m.advantage == pytest.approx(3 / 4 - 1 / 6)
    # Six non-members cannot resolve an FPR under 1/6: TPR at 1% and 0.1% are left
    # empty, not the TPR at FPR 0 (0.5 here) passed off as them.
    assert math.isnan(m.tpr_at_1pct) and math.isnan(m.tpr_at_01pct)
    assert m.lowest_fpr == pytest.approx(1 / 6)
    assert tpr_at_fpr(np.array(m.fpr), np.array(m.tpr), 0.01) == pytest.approx(0.5)
    assert m.positives == 4 and m.negatives == 6
    assert tpr_at_fpr(np.array([0.0, 0.2, 1.0]), np.array([0.1, 0.6, 1.0]), 0.25) == 0.6
    assert tpr_at_fpr(np.array([0.0, 0.2, 1.0]), np.array([0.1, 0.6, 1.0]), 0.19) == 0.1
    assert tpr_at_fpr(np.array([0.3, 1.0]), np.array([0.5, 1.0]), 0.1) == 0.0


def test_perfect_useless_and_inverted_scores() -> None:
    truth = np.array([1, 1, 0, 0])
    perfect = attack_metrics(np.array([2.0, 3.0, 0.0, 1.0]), truth)
    assert perfect.auc == 1.0 and perfect.advantage == 1.0
    constant = attack_metrics(np.zeros(4), truth)
    assert constant.auc == 0.5 and constant.advantage == 0.0
    inverted = attack_metrics(np.array([0.0, 1.0, 2.0, 3.0]), truth)  # members lowest
    assert inverted.auc == 0.0 and inverted.advantage == 0.0
    for m in (perfect, constant, inverted):  # two non-members resolve no low FPR
        assert math.isnan(m.tpr_at_1pct) and math.isnan(m.tpr_at_01pct)
    # With 1,000 non-members both are resolved.
    many = np.concatenate([np.ones(2), np.zeros(1000)])
    assert attack_metrics(many, many).tpr_at_01pct == 1.0
    assert attack_metrics(-many, many).tpr_at_01pct == 0.0
    assert attack_metrics(np.zeros(1002), many).tpr_at_1pct == 0.0
    with pytest.raises(ValueError, match="both positive and negative"):
        attack_metrics(np.zeros(2), np.array([1, 1]))
    with pytest.raises(ValueError, match="finite"):
        attack_metrics(np.array([1.0, np.nan]), np.array([1, 0]))


def test_tied_scores_earn_half_credit() -> None:
    truth = np.array([1, 1, 0, 0])
    scores = np.array([1.0, 0.5, 0.5, 0.0])
    m = attack_metrics(scores, truth)
    # Four (member, non-member) pairs: three ordered right, one tied (half): 3.5 / 4.
    assert m.auc == pytest.approx(0.875) == roc_auc_score(truth, scores)
    # Threshold 1.0: TPR 1/2, FPR 0; threshold 0.5: TPR 1, FPR 1/2. Both give 0.5.
    assert m.advantage == pytest.approx(0.5)
    assert math.isnan(m.tpr_at_1pct)  # two non-members


def test_tpr_at_low_fpr_with_many_non_members_by_hand() -> None:
    # 200 non-members score 0.000, 0.001, ..., 0.199; 1% of them is 2 false positives.
    negatives = np.arange(200) / 1000
    positives = np.array([0.5, 0.5, 0.5, 0.1985, 0.1975, 0.1855, 0.0, 0.0, 0.0, 0.0])
    scores = np.concatenate([positives, negatives])
    truth = np.concatenate([np.ones(10), np.zeros(200)])
    m = attack_metrics(scores, truth)
    # Above every non-member: 3 members (TPR 0.3 at FPR 0). Letting in 0.199 (FPR 0.5%)
    # adds 0.1985; letting in 0.198 (FPR 1%) adds 0.1975: TPR 0.5 at FPR 1%. The next
    # member, 0.1855, costs 14 false positives (0.186 to 0.199): TPR 0.6 at FPR 7%.
    # 200 non-members resolve 1% (2 false positives) but not 0.1% (1/200 = 0.5%).
    assert m.tpr_at_1pct == pytest.approx(0.5)
    assert math.isnan(m.tpr_at_01pct) and m.lowest_fpr == pytest.approx(0.005)
    assert m.advantage == pytest.approx(0.6 - 0.07)
    # Pairs won: 3 x 200, 199, 198, 186, and 4 ties with the non-member at 0 (half
    # each): 1185 of 2000.
    assert m.auc == pytest.approx(1185 / 2000) == roc_auc_score(truth, scores)
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    assert m.tpr_at_1pct == tpr_at_fpr(fpr, tpr, 0.01)
    assert tpr_at_fpr(fpr, tpr, 0.001) == pytest.approx(0.3)  # the curve's TPR at FPR 0
    assert tpr_at_fpr(fpr, tpr, 0.1) == pytest.approx(0.6)


def test_tpr_at_01pct_needs_a_thousand_non_members_by_hand() -> None:
    # 1,000 non-members score 0, 1, ..., 999. At FPR <= 0.1% one false positive (999)
    # is allowed: members at 999 or above pass, 3 of 10 (997.5 would let 998 in too).
    # At FPR <= 1%, ten (990..999): 997.5 and 990.5 pass too, 5 of 10.
    negatives = np.arange(1000.0)
    positives = np.array([2000.0, 2000.0, 999.5, 997.5, 990.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    truth = np.concatenate([np.ones(10), np.zeros(1000)])
    m = attack_metrics(np.concatenate([positives, negatives]), truth)
    assert (m.tpr_at_01pct, m.tpr_at_1pct, m.lowest_fpr) == (0.3, 0.5, 0.001)
    # One non-member fewer: 1 / 999 > 0.1%, so that figure is left empty.
    fewer = attack_metrics(np.concatenate([positives, negatives[1:]]), truth[:-1])
    assert math.isnan(fewer.tpr_at_01pct) and fewer.tpr_at_1pct == 0.5
    assert fewer.summary()["tpr_at_01pct"] != fewer.summary()["tpr_at_01pct"]  # NaN


def test_tpr_at_low_fpr_counts_operating_points_among_tied_scores() -> None:
    # Three members on top, then four ties of one member and one non-member, then the
    # rest. Threshold 4 is a real operating point: TPR 5/10 at FPR 2/200 = 1%.
    positives = [10.0, 10.0, 10.0, 5.0, 4.0, 3.0, 2.0, 0.0, 0.0, 0.0]
    negatives = [5.0, 4.0, 3.0, 2.0] + [-1.0] * 196
    scores = np.array(positives + negatives)
    truth = np.array([1] * 10 + [0] * 200)
    assert float(np.mean(scores[truth == 1] >= 4.0)) == 0.5
    assert float(np.mean(scores[truth == 0] >= 4.0)) == 0.01
    assert attack_metrics(scores, truth).tpr_at_1pct == pytest.approx(0.5)


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
    from fedunlearn.apps.simulation import simulate

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
    attacks = result.metrics.attacks.metrics
    assert set(attacks) == {"mia_baseline", "mia_gap", "deletion_records", "deletion_client"}
    assert set(attacks["mia_baseline"]) == {"original", "federaser", "retrain"}
    assert set(attacks["mia_gap"]) == {"federaser", "retrain"}
    assert set(attacks["deletion_records"]) == {"federaser", "retrain"}
    assert set(attacks["deletion_client"]) == {"federaser", "retrain"}
    assert (result.run_dir / "attacks.json").is_file()
    assert (result.run_dir / "attacks_roc.png").is_file()
    written = json.loads((result.run_dir / "attacks.json").read_text())
    nan_as_none = {
        a: {m: {k: (None if v != v else v) for k, v in f.items()} for m, f in by.items()}
        for a, by in attacks.items()
    }
    assert written["metrics"] == nan_as_none
    setup = written["setup"]
    # Forgetting client 0 with 30 memorization canaries: 30 canaries against their 30
    # twins; deleted records (client 0's) against as many retained ones.
    assert setup["members"] == setup["non_members"] == 30
    assert setup["deleted"] == setup["retained"] > 0
    # Every summary is the one of its ROC curve.
    for attack in ("mia_baseline", "mia_gap", "deletion_records"):
        side = (
            ("members", "non_members") if attack != "deletion_records" else ("deleted", "retained")
        )
        for label, summary in attacks[attack].items():
            fpr = np.array(written["roc"][attack][label]["fpr"])
            tpr = np.array(written["roc"][attack][label]["tpr"])
            assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
            assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
            assert summary["auc"] == pytest.approx(area_under(fpr, tpr))
            assert summary["advantage"] == pytest.approx(float(np.max(tpr - fpr)))
            # 30 non-members: no FPR under 1/30 is resolved; 200-odd retained records
            # resolve 1% but not 0.1%.
            negatives = setup[side[1]]
            assert summary["lowest_fpr"] == pytest.approx(1 / negatives)
            if negatives >= 100:
                assert summary["tpr_at_1pct"] == pytest.approx(tpr_at_fpr(fpr, tpr, 0.01))
            else:
                assert math.isnan(summary["tpr_at_1pct"])
            assert math.isnan(summary["tpr_at_01pct"])
            # Each figure sits in its 95% bootstrap interval.
            for key in ("auc", "advantage"):
                assert summary[f"{key}_ci_low"] <= summary[key] <= summary[f"{key}_ci_high"]
            assert (summary["positives"], summary["negatives"]) == (setup[side[0]], setup[side[1]])
    # The retrained model never saw client 0, whose data carries the canaries: its records
    # fit visibly worse after, and client 0 is the clear guess among the four.
    assert attacks["deletion_records"]["retrain"]["auc"] > 0.6
    assert attacks["deletion_client"]["retrain"] == {
        "top1": 1.0,
        "best_rank": 1.0,
        "candidates": 4.0,
    }
    columns = result.metrics.table_columns["federaser"]
    assert {"mia_auc", "reference_mia_auc", "gap_auc", "reference_gap_auc"} <= set(columns)
    assert columns["mia_auc"] == attacks["mia_baseline"]["federaser"]["auc"]
    assert columns["reference_mia_auc"] == attacks["mia_baseline"]["retrain"]["auc"]
    assert columns["gap_auc"] == attacks["mia_gap"]["federaser"]["auc"]


# ---------------------------------------------------------------- the attacker sees no truth

TRUTH_MODULES = {
    "fedunlearn.data.world",
    "fedunlearn.evaluation.candidates",
    "fedunlearn.evaluation.leakage",
}
TRUTH_NAMES = {
    "membership_truth",
    "deletion_truth",
    "removed_clients",
    "canary_members",
    "canary_ids",
    "canary_client",
    "canary_ids_of",
    "memorization_ids",
    "memorization_holdout",
    "federated_data",
}
BACKDOORS = {"importlib", "gc", "inspect", "builtins"}


def _module_file(name: str) -> Path | None:
    base = Path(fedunlearn.__file__).parent.parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, name: str) -> set[str]:
    """Every module ``path`` (module ``name``) imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                module = ".".join(
                    parts[: len(parts) - node.level + 1] + ([module] if module else [])
                )
            found.add(module)
            found |= {
                f"{module}.{a.name}" for a in node.names if _module_file(f"{module}.{a.name}")
            }
    return found


def _attacker_code() -> dict[str, Path]:
    """The attacker's module and every fedunlearn module it imports, transitively, with
    the ``fedunlearn.attacks`` package it lives in (not ``fedunlearn/__init__.py``, the
    platform's entry point: no attacker module may import it, checked below)."""
    todo, seen = ["fedunlearn.attacks.attacker", "fedunlearn.attacks"], {}
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or name == "fedunlearn" or path is None:
            continue
        seen[name] = path
        imported = [m for m in _imports(path, name) if m.startswith("fedunlearn.")]
        # Importing a module runs the __init__ of every package above it.
        parents = {".".join(m.split(".")[:i]) for m in imported for i in range(2, m.count(".") + 1)}
        todo += [*imported, *parents]
    return seen


def _peeks(tree: ast.AST) -> set[str]:
    """Names in ``tree`` that could reach the truth or any live object."""
    found = set()
    for node in ast.walk(tree):
        word = getattr(node, "attr", None) or getattr(node, "id", None)
        if word in TRUTH_NAMES or word in {"__import__", "get_objects"}:
            found.add(word)
        value = getattr(node, "value", None)
        if word == "modules" and isinstance(value, ast.Name) and value.id == "sys":
            found.add("sys.modules")
    return found


def test_the_attacker_code_cannot_reach_the_harness_truth() -> None:
    code = _attacker_code()
    assert {
        "fedunlearn.attacks.attacker",
        "fedunlearn.attacks.gap",
        "fedunlearn.data.canary",
        "fedunlearn.data",  # packages run their __init__ when a module of theirs loads
    } <= set(code)
    for name, path in code.items():
        imported = _imports(path, name)
        assert not imported & TRUTH_MODULES, f"{name} imports the harness's truth"
        assert "fedunlearn" not in imported, f"{name} imports the whole platform"
        assert not {m.split(".")[0] for m in imported} & BACKDOORS, f"{name} may reach anything"
        assert not _peeks(ast.parse(path.read_text())), f"{name} peeks"
    # The view the attacker is handed holds candidates' inputs and labels only.
    assert [f.name for f in dataclasses.fields(CandidateView)] == [
        "membership",
        "deletion",
        "clients",
    ]
    # The inference-attacker client decodes its query with the wire format and imports
    # nothing of the harness's truth.
    client = Path(fedunlearn.__file__).parent.parent / "clients" / "inference_attacker.py"
    assert not _imports(client, "fedunlearn.clients.inference_attacker") & TRUTH_MODULES


def test_the_import_scan_sees_the_imports_it_guards_against(tmp_path: Path) -> None:
    # The scan above would miss nothing it is meant to catch.
    source = tmp_path / "peek.py"
    source.write_text(
        "import fedunlearn.data.world\n"
        "from fedunlearn.evaluation import leakage\n"
        "from ..evaluation import candidates as again\n"
        "def late():\n"
        "    from fedunlearn.evaluation.leakage import Candidates\n"
    )
    found = _imports(source, "fedunlearn.attacks.peek")
    assert set(TRUTH_MODULES) <= found
    assert "fedunlearn.evaluation" in found  # `from fedunlearn.evaluation import x`: the package


def _flip_the_truth(world, candidates) -> dict:
    """Turn the harness's truth upside down where it lives; return what to restore."""
    candidates.membership_truth[:] = 1 - candidates.membership_truth
    candidates.deletion_truth[:] = 1 - candidates.deletion_truth
    object.__setattr__(candidates, "removed_clients", frozenset({1, 2, 3}))
    object.__setattr__(candidates, "canary_members", not candidates.canary_members)
    saved = {
        name: getattr(world, name)
        for name in (
            "clients",
            "canary_client",
            "canary_ids",
            "memorization_ids",
            "memorization_holdout",
        )
    }
    clients = world.clients
    rotated = [clients[c] for c in [*range(1, len(clients)), 0]]
    every = dict(enumerate(rotated))  # all built up front: no slice of the pool
    object.__setattr__(world, "clients", ClientPartitions(clients.pool, [()] * len(every), every))
    object.__setattr__(world, "canary_client", 2)
    object.__setattr__(world, "canary_ids", clients[3].ids[:7].copy())
    object.__setattr__(world, "memorization_ids", clients[2].ids[:7].copy())
    object.__setattr__(world, "memorization_holdout", clients[1].subset(np.arange(7)))
    return saved


def test_the_attacker_never_reads_the_harness_truth(trained) -> None:
    # Score once; turn every piece of the truth upside down (the candidates' truth,
    # and the world's canaries, memorization ids and partitions, in the very objects
    # the harness holds and `federated_data` returns from its cache); score again, and
    # once more with the candidates shuffled. An attacker that read the truth, or the
    # order in which the harness lists candidates, would change its scores.
    config, result = trained
    world = federated_data(config)
    own, pool = split_held_out(world.test, 0.5, 3)
    candidates = build_candidates(config, world, ForgetSet.of({0}), pool, set())
    view = candidates.view

    def new_model():
        return build_model("mlp", world.info.input_shape, world.info.num_classes, 32, config.seed)

    accesses = {k: FullAccess(new_model, v) for k, v in result.models.items()}
    settings = settings_of(config, False, candidates.canary_members)
    first, first_clients = Attacker(own, new_model, settings).score_all(accesses, view)
    assert len(first) == 7 and set(first_clients) == {"federaser", "retrain"}

    saved = _flip_the_truth(world, candidates)
    try:
        assert federated_data(config).canary_client == 2  # an attacker would see the flip
        second, second_clients = Attacker(own, new_model, settings).score_all(accesses, view)
        rng = np.random.default_rng(0)
        m = rng.permutation(len(view.membership[1]))
        d = rng.permutation(len(view.deletion[1]))
        shuffled = CandidateView(
            (view.membership[0][m], view.membership[1][m]),
            (view.deletion[0][d], view.deletion[1][d]),
            dict(reversed(view.clients.items())),
        )
        third, third_clients = Attacker(own, new_model, settings).score_all(accesses, shuffled)
    finally:
        for name, value in saved.items():
            object.__setattr__(world, name, value)
    assert federated_data(config).canary_client == 0

    assert first.keys() == second.keys() == third.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        order = d if key.startswith("deletion") else m
        np.testing.assert_allclose(first[key][order], third[key], rtol=1e-6, atol=1e-9, err_msg=key)
    assert first_clients == second_clients
    for label in first_clients:
        assert third_clients[label] == pytest.approx(first_clients[label], rel=1e-6, abs=1e-9)


def test_a_client_attacker_attacks_with_its_own_partition(tmp_path: Path) -> None:
    from fedunlearn.apps.simulation import simulate

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
    result = simulate(config, show_progress=False)
    metrics = result.metrics
    assert metrics.attacks.setup["attacker"] == "client"
    assert set(metrics.attacks.metrics["mia_baseline"]) == {"original", "federaser", "retrain"}
    # The scores it sent back are kept with the truth; it is no candidate client itself.
    arrays = read_attack_scores(result.run_dir)
    assert arrays["client_scores/retrain/client"].tolist() == [0, 1, 2]
    assert 3 not in set(arrays["client_samples/client"].tolist())
    assert 3 not in set(arrays["deletion/client"].tolist())
    truth = arrays["membership/member"]
    for label in ("original", "federaser", "retrain"):
        auc = roc_auc_score(truth, arrays[f"scores/mia_baseline/{label}"])
        assert auc == metrics.attacks.metrics["mia_baseline"][label]["auc"]


def test_an_attacking_client_must_have_an_attacker_role(tmp_path: Path) -> None:
    from fedunlearn.config.options import ConfigError
    from fedunlearn.run.components import resolve_components

    config = small_config(
        tmp_path, "attack.enabled=true", "attack.attacker=client", "attack.client=3"
    )
    with pytest.raises(ConfigError, match="does not attack"):
        resolve_components(config)
