"""The leakage audit's raw data: ``attack_scores.npz`` holds every score with its truth,
record id and holder, and the recipe in docs/threats.md recomputes every reported
figure from it with scikit-learn alone, bit for bit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.attacks.metrics import attack_metrics
from fedunlearn.data.world import federated_data
from fedunlearn.evaluation.archive import FORMAT, read_attack_scores
from fedunlearn.evaluation.candidates import (
    CandidatePoolError,
    build_candidates,
    split_held_out,
)
from fedunlearn.reporting.figures import attack_roc_figure
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.reporting.tables import attack_markdown, with_interval
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import ForgetSet
from tests.conftest import small_config

THREATS = Path(__file__).resolve().parents[1] / "docs" / "threats.md"


def _recipe() -> str:
    text = THREATS.read_text()
    block = re.search(r"<!-- recheck-recipe -->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "docs/threats.md lost its recheck recipe"
    return block.group(1)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory):
    from fedunlearn.apps.simulation import simulate

    tmp = tmp_path_factory.mktemp("archive")
    # 30 canaries against 150 twins: TPR at 1% FPR is resolved, at 0.1% it is not.
    config = small_config(
        tmp,
        "canary.memorization=30",
        "attack.enabled=true",
        "attack.shadow_models=2",
        "attack.shadow_epochs=3",
        "attack.negatives=150",
        "attack.bootstrap=300",
    )
    return config, simulate(config, show_progress=False)


def test_the_documented_recipe_recomputes_every_figure_exactly(audited) -> None:
    _, result = audited
    namespace: dict = {"run_dir": result.run_dir}
    exec(compile(_recipe(), str(THREATS), "exec"), namespace)  # asserts equality itself
    mine = namespace["recheck"](result.run_dir)
    reported = json.loads((result.run_dir / "metrics.json").read_text())["attacks"]
    # It checked every attack on every model, and found figures to check.
    assert set(mine) == set(reported)
    for attack, by_model in reported.items():
        assert set(mine[attack]) == set(by_model)
    assert mine["mia_baseline"]["original"]["negatives"] == 150.0
    # Resolved and unresolved operating points are both exercised.
    for attack in ("mia_baseline", "mia_gap", "deletion_records"):
        for model, figures in mine[attack].items():
            assert figures["tpr_at_1pct"] is not None, (attack, model)
            assert figures["tpr_at_01pct"] is None, (attack, model)
            assert reported[attack][model]["tpr_at_01pct_ci_low"] is None


def test_the_recipe_fails_on_a_figure_the_archive_does_not_give(audited, tmp_path) -> None:
    # The recipe is a check, not a formality: a tampered metrics.json fails it.
    _, result = audited
    for name in ("attack_scores.npz", "metrics.json"):
        (tmp_path / name).write_bytes((result.run_dir / name).read_bytes())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    metrics["attacks"]["mia_gap"]["retrain"]["auc"] += 1e-9
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(AssertionError):
        exec(compile(_recipe(), "recipe", "exec"), {"run_dir": tmp_path})


def test_the_intervals_are_redrawn_from_the_archive(audited) -> None:
    config, result = audited
    arrays = read_attack_scores(result.run_dir)
    reported = RunMetrics.load(result.run_dir).attacks.metrics
    for key, scores in arrays.items():
        if not key.startswith("scores/"):
            continue
        _, attack, model = key.split("/")
        side = str(arrays[f"side/{attack}"])
        truth = arrays["membership/member" if side == "membership" else "deletion/deleted"]
        seed = derive_seed(config.seed, "bootstrap", attack, model)
        again = attack_metrics(scores, truth, config.attack.bootstrap, seed).summary()
        for name, value in reported[attack][model].items():
            assert value == again[name] or (math.isnan(value) and math.isnan(again[name]))


def test_the_archive_names_every_candidate_and_its_holder(audited) -> None:
    config, result = audited
    arrays = read_attack_scores(result.run_dir)
    assert str(arrays["format"]) == FORMAT
    world = federated_data(config)
    member = arrays["membership/member"].astype(bool)
    ids, holder = arrays["membership/record_id"], arrays["membership/client"]
    # Members: client 0's memorization canaries; non-members: twins nobody holds.
    assert set(ids[member]) == set(world.memorization_ids.tolist())
    assert (holder[member] == 0).all() and (holder[~member] == -1).all()
    assert len(set(ids.tolist())) == len(ids) == 180
    held = {c: set(world.client(c).ids.tolist()) for c in range(4)}
    assert not set(ids[~member].tolist()) & set().union(*held.values())
    # Deletion: deleted records are client 0's, retained ones of the clients that stay,
    # each held by the client the archive names.
    deleted = arrays["deletion/deleted"].astype(bool)
    owners = arrays["deletion/client"]
    assert (owners[deleted] == 0).all() and set(owners[~deleted].tolist()) <= {1, 2, 3}
    for record, owner in zip(arrays["deletion/record_id"], owners, strict=True):
        assert int(record) in held[int(owner)]
    # Scores follow their side's candidates, one per candidate, on every model.
    for key, scores in arrays.items():
        if key.startswith("scores/"):
            side = str(arrays[f"side/{key.split('/')[1]}"])
            assert scores.dtype == np.float64 and len(scores) == len(arrays[f"{side}/record_id"])
    assert {k for k in arrays if k.startswith("scores/mia_baseline/")} == {
        "scores/mia_baseline/original",
        "scores/mia_baseline/federaser",
        "scores/mia_baseline/retrain",
    }
    # Per-client scores: every client, client 0 the removed one.
    for model in ("federaser", "retrain"):
        assert arrays[f"client_scores/{model}/client"].tolist() == [0, 1, 2, 3]
        assert arrays[f"client_scores/{model}/removed"].tolist() == [1, 0, 0, 0]
    samples = arrays["client_samples/client"]
    for c in range(4):
        assert set(arrays["client_samples/record_id"][samples == c].tolist()) <= held[c]


def test_the_tables_and_the_figure_show_intervals_and_log_axes(audited) -> None:
    _, result = audited
    attacks = RunMetrics.load(result.run_dir).attacks.metrics
    table = (result.run_dir / "attacks.md").read_text()
    assert table == attack_markdown(attacks)
    row = next(line for line in table.splitlines() if line.startswith("| mia_gap | retrain"))
    auc = attacks["mia_gap"]["retrain"]
    expected = f"{auc['auc']:.2f} [{auc['auc_ci_low']:.2f}, {auc['auc_ci_high']:.2f}]"
    assert expected in row
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "0.667%"  # lowest FPR: 1 / 150
    assert cells[7] == "-"  # TPR at 0.1% FPR: not resolved by 150 negatives
    assert re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", cells[6])
    written = json.loads((result.run_dir / "attacks.json").read_text())
    fig = attack_roc_figure(written["roc"], attacks)
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert any(line.get_label() == "chance" for line in ax.get_lines())
        assert ax.get_xlim()[0] < 1 / 150 + 1e-12
    assert (result.run_dir / "attacks_roc.png").is_file()


def test_with_interval_formats_by_hand() -> None:
    figures = {"auc": 0.6234, "auc_ci_low": 0.5812, "auc_ci_high": 0.6649, "tpr": None}
    assert with_interval(figures, "auc", "{:.2f}") == "0.62 [0.58, 0.66]"
    assert with_interval(figures, "tpr", "{:.3f}") == "-"
    assert with_interval({"auc": 0.5}, "auc", "{:.2f}") == "0.50"


# ---------------------------------------------------------------- negatives on demand


def test_canary_twins_are_topped_up_to_the_negatives_asked(tmp_path) -> None:
    config = small_config(tmp_path, "attack.negatives=1000")
    world = federated_data(config)
    pool = split_held_out(world.test, 0.5, 3)[1]
    membership = build_candidates(config, world, ForgetSet.of({0}), pool, set())
    truth = membership.membership_truth.astype(bool)
    assert (~truth).sum() == 1000 and truth.sum() == config.canary.memorization
    twins = membership.membership_ids[~truth]
    assert len(set(twins.tolist())) == 1000
    assert set(world.memorization_holdout.ids.tolist()) <= set(twins.tolist())
    assert (membership.membership_clients[~truth] == -1).all()
    x, y = membership.view.membership
    assert ((x[~truth] >= 0) & (x[~truth] <= 1)).all()
    assert ((y >= 0) & (y < world.info.num_classes)).all()


def test_a_pool_too_small_for_the_negatives_asked_is_an_error(tmp_path) -> None:
    config = small_config(tmp_path, "attack.negatives=5000")
    world = federated_data(config)
    pool = split_held_out(world.test, 0.5, 3)[1]
    # Client 1 holds no canary: non-members come from the held-out pool.
    with pytest.raises(CandidatePoolError, match=rf"holds only {len(pool)}.*test_fraction"):
        build_candidates(config, world, ForgetSet.of({1}), pool, set())
    # Client 0's twins are drawn on demand, but retained records run out.
    with pytest.raises(CandidatePoolError, match="retained records"):
        build_candidates(config, world, ForgetSet.of({0}), pool, set())


def test_the_default_draws_the_candidates_it_always_drew(tmp_path) -> None:
    # attack.negatives = 0 draws as many negatives as positives, from the same random
    # stream as before the key existed: the same seed scores the same candidates.
    config = small_config(tmp_path)
    world = federated_data(config)
    pool = split_held_out(world.test, 0.5, 3)[1]
    default = build_candidates(config, world, ForgetSet.of({0}), pool, set())
    truth = default.membership_truth.astype(bool)
    assert truth.sum() == (~truth).sum() == config.canary.memorization
    assert set(default.membership_ids[~truth].tolist()) == set(
        world.memorization_holdout.ids.tolist()
    )
    deleted = default.deletion_truth.astype(bool)
    assert deleted.sum() == (~deleted).sum()
