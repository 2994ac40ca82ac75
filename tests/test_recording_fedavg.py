"""The recording FedAvg: history contents, seeded sampling, loud failures."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord

from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.recording import RecordingFedAvg
from fedunlearn.federation.registry import FederationError
from fedunlearn.federation.sampling import SamplingPlan, sample_clients
from fedunlearn.history import MemoryHistory
from fedunlearn.learning.arrays import to_record
from tests.fakes import linear_federation, train_linear, zeros

DIRECTIONS = {0: [1.0, 0.0], 1: [0.0, 1.0], 2: [1.0, 1.0]}
EXAMPLES = {0: 10, 1: 20, 2: 30}


def test_history_stores_each_update_against_the_global_model_the_round_started_from() -> None:
    # Client k returns g + 2 d_k, so its update is exactly 2 d_k in every round.
    # Measured against the aggregated model instead it would be 2 d_k - 2 mean(d).
    # The global model moves by 2 * (10 d_0 + 20 d_1 + 30 d_2) / 60 = [4/3, 5/3] a round.
    _, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    history, final, _, _ = train_linear(grid, registry, rounds=3, delta_t=1)
    step = np.array([4 / 3, 5 / 3])
    for t in (1, 2, 3):
        kept = history[t]
        np.testing.assert_allclose(kept.global_model["w"], (t - 1) * step)
        for k, d in DIRECTIONS.items():
            np.testing.assert_allclose(kept.updates[k]["w"], 2 * np.array(d))
        assert kept.num_examples == EXAMPLES
    np.testing.assert_allclose(final["w"], 3 * step)


def test_keeps_exactly_rounds_one_plus_multiples_of_delta_t_and_all_participation() -> None:
    _, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    history, _, _, _ = train_linear(grid, registry, rounds=5, delta_t=2)
    assert history.rounds == [1, 3, 5]
    assert history.participation == {r: (0, 1, 2) for r in range(1, 6)}
    assert history[3].clients == (0, 1, 2)


def test_history_is_keyed_by_partition_id_not_by_flower_node_id() -> None:
    _, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    history, _, _, _ = train_linear(grid, registry, rounds=1, delta_t=1)
    node_ids = set(grid.get_node_ids())
    assert set(history[1].updates) == {0, 1, 2}
    assert not node_ids & {0, 1, 2}


def test_seeded_sampling_is_reproducible_and_depends_on_seed_and_round() -> None:
    population = range(20)
    a = sample_clients(population, 0.25, 1, seed=7, server_round=3)
    assert a == sample_clients(population, 0.25, 1, seed=7, server_round=3)
    assert len(a) == 5
    others = {
        tuple(sample_clients(population, 0.25, 1, seed=s, server_round=r))
        for s in range(3)
        for r in range(1, 4)
    }
    assert len(others) > 1
    assert sample_clients(population, 0.01, 3, seed=0, server_round=1).__len__() == 3


def test_excluding_a_client_keeps_every_other_sampled_client() -> None:
    directions = {k: [float(k), 1.0] for k in range(6)}
    examples = dict.fromkeys(range(6), 10)
    sampling = SamplingPlan(fraction_train=0.5, min_train_clients=1)
    _, grid, registry = linear_federation(directions, examples)
    full, _, _, _ = train_linear(grid, registry, rounds=6, delta_t=1, sampling=sampling)
    instruction = TrainInstruction(0, 1.0, 8, 0.1)
    without = MemoryHistory(1)
    strategy = RecordingFedAvg.for_phase(
        registry=registry,
        instruction=instruction,
        history=without,
        sampling=sampling,
        seed=0,
        exclude={2},
    )
    strategy.start(grid, to_record(zeros()), num_rounds=6)
    assert any(2 in s for s in full.participation.values())
    for r, sampled in full.participation.items():
        assert without[r].clients == tuple(c for c in sampled if c != 2)


def test_does_not_mutate_the_config_it_is_given() -> None:
    clients, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    config = ConfigRecord({"extra": 5})
    strategy = RecordingFedAvg.for_phase(
        registry=registry, instruction=TrainInstruction(0, 1.0, 8, 0.1)
    )
    strategy.start(grid, to_record(zeros()), num_rounds=2, train_config=config)
    assert dict(config) == {"extra": 5}
    assert all(c["extra"] == 5 for c in clients.configs)
    assert {c["server-round"] for c in clients.configs} == {1, 2}


def test_a_failing_client_fails_the_round_loudly_with_its_error() -> None:
    _, grid, registry = linear_federation(DIRECTIONS, EXAMPLES, failing={1})
    with pytest.raises(FederationError, match="client 1 exploded") as err:
        train_linear(grid, registry, rounds=2, delta_t=1)
    assert "2 of 3 clients replied" in str(err.value)


def test_a_reply_quorum_below_one_tolerates_a_failing_client() -> None:
    _, grid, registry = linear_federation(DIRECTIONS, EXAMPLES, failing={1})
    sampling = SamplingPlan(min_reply_fraction=0.5)
    history, _, _, _ = train_linear(grid, registry, rounds=1, delta_t=1, sampling=sampling)
    assert history[1].clients == (0, 2)
    assert history[1].sampled == (0, 1, 2)


def test_aggregated_metrics_do_not_average_client_ids_and_count_epochs() -> None:
    _, grid, registry = linear_federation(DIRECTIONS, EXAMPLES)
    strategy = RecordingFedAvg.for_phase(
        registry=registry, instruction=TrainInstruction(0, 2.0, 8, 0.1)
    )
    result = strategy.start(grid, to_record(zeros()), num_rounds=1)
    metrics = dict(result.train_metrics_clientapp[1])
    assert "partition-id" not in metrics
    assert metrics["client-epochs"] == 6.0
    assert strategy.cost.client_epochs == 6.0 and strategy.cost.rounds == 1


def test_excluding_an_unknown_client_is_an_error() -> None:
    _, _, registry = linear_federation(DIRECTIONS, EXAMPLES)
    with pytest.raises(FederationError, match="unknown clients"):
        RecordingFedAvg.for_phase(
            registry=registry, instruction=TrainInstruction(0, 1.0, 8, 0.1), exclude={9}
        )
