"""The leakage audit's harness side: candidates and their truth, the attacker's
settings, client ranking and scoring, all checked against hand-computed answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fedunlearn.attacks.attacker import AttackSettings, CandidateView
from fedunlearn.attacks.metrics import attack_metrics
from fedunlearn.attacks.wire import decode_query, encode_query
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.world import FederatedData, federated_data
from fedunlearn.evaluation.candidates import (
    Candidates,
    LeakageUnavailableError,
    build_candidates,
    split_held_out,
)
from fedunlearn.evaluation.leakage import (
    LeakageReport,
    client_ranking_metrics,
    score_report,
    settings_of,
)
from fedunlearn.unlearning.requests import ForgetSet

# ---------------------------------------------------------------- client ranking


def test_client_ranking_with_all_scores_equal_earns_the_chance_level() -> None:
    m = client_ranking_metrics(dict.fromkeys(range(10), 0.25), {0})
    # One removed client among ten tied at the top: a tenth of a win, not a win by id.
    assert m["top1"] == pytest.approx(0.1)
    # Ten tied clients share ranks 1..10: the average rank is 5.5.
    assert m["best_rank"] == pytest.approx(5.5)
    assert m["candidates"] == 10.0


def test_client_ranking_with_a_clear_winner() -> None:
    scores = {0: 0.1, 1: 0.9, 2: 0.2, 3: 0.3}
    removed = client_ranking_metrics(scores, {1})
    assert removed["top1"] == 1.0 and removed["best_rank"] == 1.0
    retained = client_ranking_metrics(scores, {0})
    assert retained["top1"] == 0.0
    assert retained["best_rank"] == 4.0  # client 0 has the lowest score of four
    # The best rank of several removed clients: client 3 is second.
    assert client_ranking_metrics(scores, {0, 3})["best_rank"] == 2.0


def test_client_ranking_shares_a_tie_at_the_top_and_averages_tied_ranks() -> None:
    scores = {4: 2.0, 5: 2.0, 6: 1.0, 7: 1.0, 8: 1.0}
    m = client_ranking_metrics(scores, {5})
    assert m["top1"] == pytest.approx(0.5) and m["best_rank"] == pytest.approx(1.5)
    m = client_ranking_metrics(scores, {7})
    assert m["top1"] == 0.0 and m["best_rank"] == pytest.approx(4.0)  # ranks 3, 4, 5
    m = client_ranking_metrics(scores, {4, 5})
    assert m["top1"] == 1.0 and m["best_rank"] == pytest.approx(1.5)


def test_client_ranking_without_scores_or_without_a_scored_removed_client_is_nan() -> None:
    empty = client_ranking_metrics({}, {0})
    assert math.isnan(empty["top1"]) and math.isnan(empty["best_rank"])
    assert empty["candidates"] == 0.0
    unscored = client_ranking_metrics({1: 0.5, 2: 0.1}, {0})
    assert unscored["top1"] == 0.0 and math.isnan(unscored["best_rank"])


# ---------------------------------------------------------------- scoring with the truth


def test_score_report_scores_each_attack_against_its_own_truth(small: ExperimentConfig) -> None:
    # Membership truth and deletion truth are opposite, so the same scores are perfect
    # for one and exactly wrong for the other: swapping them cannot go unnoticed.
    xy = (np.zeros((4, 1), np.float32), np.zeros(4, np.int64))
    candidates = Candidates(
        view=CandidateView(xy, xy),
        membership_truth=np.array([1.0, 1.0, 0.0, 0.0]),
        deletion_truth=np.array([0.0, 0.0, 1.0, 1.0]),
        removed_clients=frozenset({2}),
        canary_members=True,
    )
    scores = np.array([3.0, 2.0, 1.0, 0.0])
    report = score_report(
        {"mia_baseline/original": scores, "mia_gap/m": scores, "deletion_records/m": scores},
        {"m": {0: 1.0, 1: 1.0, 2: 3.0, 3: 0.0}},
        candidates,
        small,
    )
    assert report.metrics["mia_baseline"]["original"]["auc"] == 1.0
    assert report.metrics["mia_gap"]["m"]["auc"] == 1.0
    assert report.metrics["mia_gap"]["m"]["advantage"] == 1.0
    assert report.metrics["deletion_records"]["m"]["auc"] == 0.0
    assert report.metrics["deletion_records"]["m"]["advantage"] == 0.0
    assert report.metrics["deletion_client"]["m"] == {
        "top1": 1.0,
        "best_rank": 1.0,
        "candidates": 4.0,
    }
    assert report.setup["members"] == 2 and report.setup["non_members"] == 2
    assert report.setup["deleted"] == 2 and report.setup["retained"] == 2


# ---------------------------------------------------------------- candidates


@pytest.fixture
def world(small: ExperimentConfig) -> FederatedData:
    return federated_data(small)


def _pool(world: FederatedData):
    return split_held_out(world.test, 0.5, 3)[1]


def _rows(x: np.ndarray) -> set[bytes]:
    return {np.ascontiguousarray(r).tobytes() for r in x}


def test_the_default_small_world_has_memorization_canaries_in_client_0(
    small: ExperimentConfig, world: FederatedData
) -> None:
    # What the tests below assume of the default scenario.
    assert small.canary.enabled and small.canary.client == 0
    assert small.canary.memorization > 0
    assert world.canary_client == 0 and len(world.memorization_ids) == small.canary.memorization
    assert np.isin(world.memorization_ids, world.client(0).ids).all()


def test_forgetting_the_canary_client_scores_its_memorization_canaries(
    small: ExperimentConfig, world: FederatedData
) -> None:
    candidates = build_candidates(small, world, ForgetSet.of({0}), _pool(world), set())
    assert candidates.canary_members is True
    settings = settings_of(small, False, candidates.canary_members)
    assert settings.canaries == 2 * small.canary.memorization > 0
    # The truth is right: members are the planted canaries, non-members their twins
    # given to nobody.
    x, _ = candidates.view.membership
    truth = candidates.membership_truth.astype(bool)
    planted = world.records(0, world.memorization_ids)
    assert truth.sum() == len(planted) == (~truth).sum()
    assert _rows(x[truth]) == _rows(planted.x)
    assert _rows(x[~truth]) == _rows(world.memorization_holdout.x)
    # Deleted records are client 0's; retained ones are of clients that stay.
    dx, _ = candidates.view.deletion
    deleted = candidates.deletion_truth.astype(bool)
    assert _rows(dx[deleted]) <= _rows(world.client(0).x)
    stay = set().union(*(_rows(world.client(c).x) for c in (1, 2, 3)))
    assert _rows(dx[~deleted]) <= stay
    assert candidates.removed_clients == frozenset({0})
    assert sorted(candidates.view.clients) == [0, 1, 2, 3]


def test_forgetting_another_client_gives_the_attacker_no_canaries(
    small: ExperimentConfig, world: FederatedData
) -> None:
    pool = _pool(world)
    candidates = build_candidates(small, world, ForgetSet.of({1}), pool, set())
    assert candidates.canary_members is False
    assert settings_of(small, False, candidates.canary_members).canaries == 0
    assert settings_of(small, True, candidates.canary_members).canaries == 0
    # Members are client 1's records, non-members held-out records from the pool.
    x, _ = candidates.view.membership
    truth = candidates.membership_truth.astype(bool)
    assert _rows(x[truth]) <= _rows(world.client(1).x)
    assert _rows(x[~truth]) <= _rows(pool.x)
    assert candidates.removed_clients == frozenset({1})


def test_without_canaries_the_attacker_draws_none(tmp_path) -> None:
    from tests.conftest import small_config

    config = small_config(tmp_path, "canary.enabled=false")
    assert settings_of(config, False, True).canaries == 0


def test_records_unknown_to_the_harness_leave_nothing_to_score(
    small: ExperimentConfig, world: FederatedData
) -> None:
    # A client asking to forget records it never held (crafted ones, say).
    never_held = int(max(c.ids.max() for c in world.clients)) + 10**6
    crafted = ForgetSet.of(records={2: [never_held, never_held + 1]})
    with pytest.raises(LeakageUnavailableError, match="unknown to the harness"):
        build_candidates(small, world, crafted, _pool(world), set())
    # Record ids held by another client are unknown for this one too.
    others = ForgetSet.of(records={2: world.client(3).ids[:5].tolist()})
    with pytest.raises(LeakageUnavailableError, match="unknown to the harness"):
        build_candidates(small, world, others, _pool(world), set())


def test_forgetting_only_backdoor_canaries_cannot_be_scored(tmp_path) -> None:
    from tests.conftest import small_config

    config = small_config(tmp_path, "canary.memorization=0")
    world = federated_data(config)
    assert len(world.canary_ids) > 0
    backdoor = ForgetSet.of(records={0: world.canary_ids.tolist()})
    with pytest.raises(LeakageUnavailableError, match="backdoor canary"):
        build_candidates(config, world, backdoor, _pool(world), set())


def test_known_forgotten_records_of_a_client_are_scored(
    small: ExperimentConfig, world: FederatedData
) -> None:
    ids = world.client(2).ids[:12]
    candidates = build_candidates(
        small, world, ForgetSet.of(records={2: ids.tolist()}), _pool(world), set()
    )
    x, _ = candidates.view.membership
    truth = candidates.membership_truth.astype(bool)
    assert _rows(x[truth]) == _rows(world.records(2, ids).x)
    assert candidates.canary_members is False
    assert candidates.removed_clients == frozenset({2})


def test_the_order_of_the_candidates_does_not_give_the_truth_away(
    small: ExperimentConfig, world: FederatedData
) -> None:
    candidates = build_candidates(small, world, ForgetSet.of({0}), _pool(world), set())
    for truth in (candidates.membership_truth, candidates.deletion_truth):
        steps = np.diff(truth)
        assert not (steps <= 0).all(), "every positive comes before every negative"
        assert not (steps >= 0).all(), "every negative comes before every positive"


# ---------------------------------------------------------------- what the attacker is handed


def test_the_attacker_is_handed_no_truth(small: ExperimentConfig, world: FederatedData) -> None:
    # The view holds inputs and labels only.
    assert {f.name for f in dataclasses.fields(CandidateView)} == {
        "membership",
        "deletion",
        "clients",
    }
    candidates = build_candidates(small, world, ForgetSet.of({0}), _pool(world), set())
    view = candidates.view
    assert set(vars(view)) == {"membership", "deletion", "clients"}
    pairs = [view.membership, view.deletion, *view.clients.values()]
    for x, y in pairs:
        assert x.shape[1:] == world.info.input_shape and y.shape == (len(x),)
        assert np.issubdtype(y.dtype, np.integer)
        assert ((y >= 0) & (y < world.info.num_classes)).all()
    # The settings are plain scalars: no room for ids or truth arrays.
    settings = settings_of(small, False, candidates.canary_members)
    for f in dataclasses.fields(AttackSettings):
        assert isinstance(getattr(settings, f.name), (bool, int, float, str)), f.name


def test_the_client_attacker_query_carries_no_truth(
    small: ExperimentConfig, world: FederatedData
) -> None:
    candidates = build_candidates(small, world, ForgetSet.of({0}), _pool(world), set())
    settings = settings_of(small, False, candidates.canary_members)
    models = {"original": {"w": np.ones(3, np.float32)}, "m": {"w": np.zeros(3, np.float32)}}
    content = encode_query(models, candidates.view, settings)
    expected = {"model/original", "model/m", "candidates/membership", "candidates/deletion"}
    expected |= {f"candidates/client/{c}" for c in candidates.view.clients}
    assert set(content.array_records) == expected
    for key in ("candidates/membership", "candidates/deletion"):
        assert set(content.array_records[key]) == {"x", "y"}
    config = content.config_records["config"]
    assert set(config) == {f.name for f in dataclasses.fields(AttackSettings)} | {"labels"}
    _, view, decoded = decode_query(content)
    assert decoded == settings
    for sent, got in zip(
        [candidates.view.membership, candidates.view.deletion],
        [view.membership, view.deletion],
        strict=True,
    ):
        np.testing.assert_array_equal(sent[0], got[0])
        np.testing.assert_array_equal(sent[1], got[1])


def test_table_columns_carry_the_tpr_intervals_and_the_lowest_fpr() -> None:
    truth = np.r_[np.ones(20), np.zeros(200)]
    scores = np.random.default_rng(0).normal(size=truth.size) + truth
    figures = attack_metrics(scores, truth, resamples=30, seed=0).summary()
    report = LeakageReport(
        {"mia_baseline": {"federaser": figures}, "lira_offline": {"federaser": figures}}, {}, {}
    )
    columns = report.columns_for("federaser", "retrain")
    for prefix in ("mia", "lira_offline"):
        # 200 negatives resolve 1% FPR (an interval), not 0.1% (NaN, as the figure).
        assert columns[f"{prefix}_tpr_at_1pct_ci_low"] == figures["tpr_at_1pct_ci_low"]
        assert columns[f"{prefix}_tpr_at_1pct_ci_high"] == figures["tpr_at_1pct_ci_high"]
        assert math.isnan(columns[f"{prefix}_tpr_at_01pct_ci_low"])
        assert columns[f"{prefix}_lowest_fpr"] == pytest.approx(1 / 200)
        # The old column names stay.
        assert columns[f"{prefix}_auc_ci_low"] == figures["auc_ci_low"]
