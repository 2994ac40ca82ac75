"""FedEraser and retraining as Flower strategies, on clients with known updates."""

from __future__ import annotations

import numpy as np
import pytest
from fedunlearn.strategies.federaser import FedEraser
from fedunlearn.strategies.retrain import Retrain

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.unlearning.method import make_method
from tests.fakes import job_for, linear_federation, train_linear

DIRECTIONS = {0: [1.0, 0.0], 1: [0.0, 1.0], 2: [1.0, 1.0]}
EXAMPLES = {0: 10, 1: 20, 2: 30}
# Without client 0, one training round (2 local epochs) moves the model by
# 2 * (20 [0, 1] + 30 [1, 1]) / 50 = [1.2, 2.0].
REMAINING_STEP = np.array([1.2, 2.0])


def run_federaser(method: FedEraser, rounds: int = 3, delta_t: int = 2):
    clients, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    history, original, instruction, _ = train_linear(grid, registry, rounds=rounds, delta_t=delta_t)
    clients.calls.clear()
    job = job_for(grid, registry, history, original, instruction, {0}, rounds)
    return method.unlearn(job), clients, original


def test_federaser_replays_kept_rounds_with_updates_rescaled_to_stored_norms() -> None:
    # Kept rounds 1 and 3. Step 1 reuses the stored round-1 updates of clients 1, 2:
    # M1 = [1.2, 2.0]. Step 2: clients 1 and 2 calibrate r * E = 1 epoch, giving
    # d_k; rescaled to the stored norm ||2 d_k|| that is 2 d_k again, so
    # M2 = M1 + [1.2, 2.0] = [2.4, 4.0].
    outcome, clients, _ = run_federaser(FedEraser(r=0.5))
    np.testing.assert_allclose(outcome.arrays["w"], 2 * REMAINING_STEP)
    assert sorted(k for k, _ in clients.calls) == [1, 2]
    assert {i.epochs for _, i in clients.calls} == {1.0}
    assert {i.phase for _, i in clients.calls} == {"calibrate"}
    assert outcome.cost.client_epochs == 2.0
    assert outcome.details["replayed_rounds"] == [1, 3]


def test_federaser_can_calibrate_the_first_round_too() -> None:
    outcome, clients, _ = run_federaser(FedEraser(r=0.5, reuse_first_round=False))
    np.testing.assert_allclose(outcome.arrays["w"], 2 * REMAINING_STEP)
    assert sorted(k for k, _ in clients.calls) == [1, 1, 2, 2]


def test_federaser_with_a_coarser_interval_replays_fewer_rounds() -> None:
    # History keeps 1, 2, 3, 4, 5; delta_t = 2 replays 1, 3, 5.
    outcome, _, _ = run_federaser(FedEraser(delta_t=2), rounds=5, delta_t=1)
    assert outcome.details["replayed_rounds"] == [1, 3, 5]
    np.testing.assert_allclose(outcome.arrays["w"], 3 * REMAINING_STEP)


def test_federaser_changes_the_model_the_forgotten_client_shaped() -> None:
    # Training with client 0 ends at 3 * 2 * (10 d0 + 20 d1 + 30 d2) / 60 = [4, 5].
    outcome, _, original = run_federaser(FedEraser())
    np.testing.assert_allclose(original["w"], [4.0, 5.0])
    assert not np.allclose(outcome.arrays["w"], original["w"])


def test_retrain_runs_every_round_without_the_forgotten_client() -> None:
    clients, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    history, original, instruction, _ = train_linear(grid, registry, rounds=3, delta_t=2)
    clients.calls.clear()
    outcome = Retrain().unlearn(job_for(grid, registry, history, original, instruction, {0}, 3))
    np.testing.assert_allclose(outcome.arrays["w"], 3 * REMAINING_STEP)
    assert 0 not in {k for k, _ in clients.calls}
    assert outcome.cost.client_epochs == 3 * 2 * 2.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"r": 0}, "r must be"),
        ({"r": 2.0}, "r must be"),
        ({"norm": "neuron"}, "norm must be"),
        ({"delta_t": -1}, "delta_t"),
        ({"ratio": 0.5}, "unknown option"),
    ],
)
def test_federaser_options_are_validated_with_the_option_named(options, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        make_method("federaser", options)
    assert "unlearning.federaser" in str(err.value)


def test_federaser_interval_must_be_a_multiple_of_the_history_interval() -> None:
    config = ExperimentConfig().with_overrides(["history.delta_t=2"])
    assert FedEraser(delta_t=3).check(config)
    assert not FedEraser(delta_t=4).check(config)


def test_federaser_asks_the_contract_only_of_clients_sampled_in_a_replayed_round() -> None:
    # Four clients, one sampled per round, rounds 1 and 3 kept: the calibrating clients
    # are the remaining ones sampled in rounds 1 or 3; the others never calibrate.
    directions = {**DIRECTIONS, 3: [2.0, 0.0]}
    _, grid, registry = linear_federation(directions, {**EXAMPLES, 3: 40})
    sampling = SamplingPlan(fraction_train=0.25, min_train_clients=1)
    history, original, instruction, _ = train_linear(
        grid, registry, rounds=3, delta_t=2, sampling=sampling
    )
    job = job_for(grid, registry, history, original, instruction, {0}, 3, sampling)
    replayed = {c for t in (1, 3) for c in history.participation[t]} - {0}
    needs = FedEraser(r=0.5).client_needs(job)
    assert set(needs) == replayed
    assert set(needs) < {1, 2, 3}  # two replayed rounds sample at most two of three
    assert FedEraser(r=1.0).client_needs(job) == {}
