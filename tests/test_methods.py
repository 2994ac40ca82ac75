"""Every unlearning method on clients with known updates: results worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from fedunlearn.strategies.fedaccum import FedAccum
from fedunlearn.strategies.fedrecover import FedRecover
from fedunlearn.strategies.fedrecovery import FedRecovery, residual_correction
from fedunlearn.strategies.finetune import FineTune
from fedunlearn.strategies.retrain import Retrain
from fedunlearn.strategies.rollback import Rollback, restart_round
from fedunlearn.strategies.subtract import Subtract, contribution_weights

from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.unlearning.requests import ForgetSet
from tests.fakes import job_for, linear_federation, train_linear

DIRECTIONS = {0: [1.0, 0.0], 1: [0.0, 1.0], 2: [1.0, 1.0]}
EXAMPLES = {0: 10, 1: 20, 2: 30}
# Training with every client moves the model by 2 * (10 d0 + 20 d1 + 30 d2) / 60
# = [4/3, 5/3] a round; without client 0 by 2 * (20 d1 + 30 d2) / 50 = [1.2, 2.0].
FULL_STEP = np.array([4 / 3, 5 / 3])
REMAINING_STEP = np.array([1.2, 2.0])


def setup(rounds: int = 3, delta_t: int = 1, **kwargs):
    clients, grid, registry = linear_federation(DIRECTIONS, EXAMPLES, **kwargs)
    history, original, instruction, _ = train_linear(grid, registry, rounds=rounds, delta_t=delta_t)
    clients.calls.clear()
    return clients, job_for(grid, registry, history, original, instruction, {0}, rounds)


def test_fedaccum_adds_the_remaining_clients_stored_updates_round_by_round() -> None:
    clients, job = setup(rounds=3, delta_t=1)
    outcome = FedAccum().unlearn(job)
    np.testing.assert_allclose(outcome.arrays["w"], 3 * REMAINING_STEP)
    assert clients.calls == [] and outcome.cost.client_epochs == 0


def test_finetune_continues_from_the_trained_model_without_the_forgotten_client() -> None:
    clients, job = setup(rounds=3)
    np.testing.assert_allclose(job.original["w"], 3 * FULL_STEP)
    outcome = FineTune(rounds=2).unlearn(job)
    np.testing.assert_allclose(outcome.arrays["w"], 3 * FULL_STEP + 2 * REMAINING_STEP)
    assert {k for k, _ in clients.calls} == {1, 2}
    # Rounds after training's: fresh sampling and seeds.
    assert {i.server_round for _, i in clients.calls} == {4, 5}


def test_subtract_removes_the_weighted_stored_contributions() -> None:
    # Client 0's share is 10/60 and its update 2 d0 = [2, 0]: [1/3, 0] a round.
    # Three rounds: [4, 5] - [1, 0] = [3, 5].
    _, job = setup(rounds=3, delta_t=1)
    outcome = Subtract().unlearn(job)
    np.testing.assert_allclose(outcome.arrays["w"], [3.0, 5.0])


def test_subtract_with_a_sparse_history_counts_each_kept_round_for_its_interval() -> None:
    # Kept rounds 1 and 3: round 1 stands for rounds 1-2, round 3 for itself.
    _, job = setup(rounds=3, delta_t=2)
    assert contribution_weights(job.history, 0, scaling=True) == pytest.approx({1: 2 / 6, 3: 1 / 6})
    np.testing.assert_allclose(Subtract().unlearn(job).arrays["w"], [3.0, 5.0])
    np.testing.assert_allclose(
        Subtract(interval_scaling=False).unlearn(job).arrays["w"], [4 - 2 / 3, 5.0]
    )


def test_fedrecovery_removes_weighted_residuals() -> None:
    # Residual each round: [4/3, 5/3] - [1.2, 2.0] = [2/15, -1/3]. The global updates
    # have equal norms c, so the weights are c/c, c/2c, c/3c = 1, 1/2, 1/3 (sum 11/6).
    # Unlearned: [4, 5] - 11/6 * [2/15, -1/3] = [3.75556, 5.61111].
    _, job = setup(rounds=3, delta_t=1)
    _correction, rounds = residual_correction(job.history, {0})
    assert [r["weight"] for r in rounds] == pytest.approx([1, 1 / 2, 1 / 3])
    outcome = FedRecovery(noise_std=0.0).unlearn(job)
    np.testing.assert_allclose(outcome.arrays["w"], [4 - 11 / 6 * 2 / 15, 5 + 11 / 6 / 3])


def test_fedrecovery_adds_noise_of_the_configured_size() -> None:
    _, job = setup(rounds=3, delta_t=1)
    clean = FedRecovery(noise_std=0.0).unlearn(job).arrays["w"]
    noisy = FedRecovery(noise_std=0.5).unlearn(job).arrays["w"]
    assert not np.allclose(clean, noisy)
    assert FedRecovery(epsilon=1.0, delta=1e-5, sensitivity=2.0).sigma(0.0) == pytest.approx(
        2.0 * np.sqrt(2 * np.log(1.25e5))
    )


def test_fedrecover_estimates_updates_exactly_when_they_are_linear_in_the_model() -> None:
    # Updates U = 2 (d_k - 0.1 g) depend linearly on the model g, so one L-BFGS pair
    # gives the exact Jacobian and every estimated round equals retraining's.
    _, job = setup(rounds=6, delta_t=1, curvature=0.1)
    retrained = Retrain().unlearn(job).arrays["w"]
    method = FedRecover(warmup=2, period=100, final=0)
    outcome = method.unlearn(job)
    np.testing.assert_allclose(outcome.arrays["w"], retrained, rtol=1e-9)
    assert outcome.details["client_updates_estimated"] == 4 * 2  # rounds 3-6, 2 clients
    assert outcome.cost.client_epochs == 2 * 2 * 2.0  # rounds 1-2 only


def test_fedrecover_schedule_of_exact_rounds() -> None:
    assert FedRecover(warmup=2, period=5, final=2).exact_rounds(20) == {1, 2, 7, 12, 17, 19, 20}
    assert FedRecover(warmup=1, period=1, final=0).exact_rounds(3) == {1, 2, 3}


def test_rollback_restarts_before_the_first_participation_and_equals_retraining() -> None:
    directions = {k: [float(k), 1.0 - k / 5] for k in range(6)}
    examples = {k: 10 + k for k in range(6)}
    sampling = SamplingPlan(fraction_train=0.5, min_train_clients=1)
    clients, grid, registry = linear_federation(directions, examples, curvature=0.05)
    history, original, instruction, _ = train_linear(
        grid, registry, rounds=8, delta_t=1, sampling=sampling
    )
    late = max(range(6), key=lambda c: history.first_participation(c) or 0)
    first = history.first_participation(late)
    assert first > 1, "the test needs a client that joined late"
    job = job_for(grid, registry, history, original, instruction, {late}, 8, sampling=sampling)
    clients.calls.clear()
    rolled = Rollback().unlearn(job)
    rounds_redone = {i.server_round for _, i in clients.calls}
    assert rounds_redone == set(range(first, 9))
    assert rolled.details["restart_round"] == first
    retrained = Retrain().unlearn(job)
    np.testing.assert_array_equal(rolled.arrays["w"], retrained.arrays["w"])
    assert rolled.cost.client_epochs < retrained.cost.client_epochs


def test_restart_round_is_the_last_kept_round_not_after_the_first_participation() -> None:
    _, job = setup(rounds=5, delta_t=2)
    assert job.history.rounds == [1, 3, 5]
    assert restart_round(job.history, {0}) == 1
    job.history._participation[1] = (1, 2)
    job.history._participation[2] = (1, 2)
    job.history._participation[3] = (1, 2)
    # First participation in round 4: restart from kept round 3.
    assert restart_round(job.history, {0}) == 3
    assert restart_round(job.history, {9}) == 6  # never took part: nothing to redo


@pytest.mark.parametrize(
    "method", [FedAccum(), FineTune(rounds=1), Subtract(), FedRecovery(noise_std=0.0)]
)
def test_every_method_changes_the_model_when_there_is_something_to_forget(method) -> None:
    _, job = setup(rounds=3, delta_t=1)
    assert not np.allclose(method.unlearn(job).arrays["w"], job.original["w"])


def test_history_based_methods_exclude_everything_forgotten_so_far() -> None:
    # Stage 2 of a sequential run: client 1 was forgotten before, client 0 now.
    # FedAccum rebuilds from history without both: only client 2 remains,
    # 3 rounds x 2 d2 = [6, 6].
    _clients, job = setup(rounds=3, delta_t=1)
    from dataclasses import replace

    staged = replace(job, forget=ForgetSet.of({0, 1}), new=ForgetSet.of({0}))
    np.testing.assert_allclose(FedAccum().unlearn(staged).arrays["w"], [6.0, 6.0])
    # Subtract edits the model it is given and removes only the new client.
    np.testing.assert_allclose(Subtract().unlearn(staged).arrays["w"], [3.0, 5.0])
