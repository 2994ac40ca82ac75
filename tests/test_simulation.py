"""A real Flower simulation (Ray engine) through the whole pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.apps import dispatch
from fedunlearn.apps.simulation import simulate
from fedunlearn.learning.metrics import parameter_distance
from tests.conftest import small_config


@pytest.mark.simulation
def test_ray_simulation_runs_every_phase_and_keeps_the_expected_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatched: list[object] = []
    prompt = dispatch.add_messages_promptly
    monkeypatch.setattr(
        dispatch, "add_messages_promptly", lambda *args: dispatched.append(prompt(*args))
    )
    config = small_config(
        tmp_path,
        "simulation.backend=ray",
        "federation.num_clients=3",
        "training.rounds=4",
        "history.delta_t=2",
        "training.learning_rate=0.1",
        'unlearning.methods=["federaser", "rollback"]',
    )
    result = simulate(config, show_progress=False)
    assert dispatched, "Flower's engine did not dispatch through add_messages_promptly"
    history = result.history
    assert history.rounds == [1, 3]
    assert history.participation == {r: (0, 1, 2) for r in range(1, 5)}
    assert all(set(history[t].updates) == {0, 1, 2} for t in history.rounds)
    metrics = result.metrics
    assert metrics.forgotten_clients == [0]
    models = metrics.models
    assert set(models) == {"original", "federaser", "rollback", "retrain"}
    for audit in models.values():
        assert 0.0 <= audit["clean_accuracy"] <= 1.0
        assert 0.0 <= audit["attack_success_rate"] <= 1.0
        assert math.isfinite(audit["kl_to_reference"])
    # Even 4 short rounds on digits learn something.
    assert models["original"]["clean_accuracy"] > 0.5
    assert models["retrain"]["clean_accuracy"] > 0.5
    assert metrics.cost.training["rounds"] == 4
    assert (
        metrics.cost.methods["federaser"]["client_epochs"]
        < metrics.cost.methods["retrain"]["client_epochs"]
    )
    # The same experiment with the clients in threads of this process: the same bits.
    threads = simulate(config.with_overrides(["simulation.backend=threads"]), show_progress=False)
    for name, arrays in result.models.items():
        for key, value in arrays.items():
            assert np.array_equal(value, threads.models[name][key]), (name, key)
    assert threads.metrics.models == metrics.models


@pytest.mark.simulation
def test_rollback_reproduces_retraining_exactly_on_the_ray_engine(tmp_path: Path) -> None:
    # Partial participation, so rollback restarts after round 1. Equality is exact:
    # sampling and local seeds are fixed, every actor trains with one thread, and the
    # server sums replies in client order, so the redone rounds are the same
    # floating-point computations as retraining's.
    config = small_config(
        tmp_path,
        "simulation.backend=ray",
        "federation.num_clients=6",
        "federation.fraction_train=0.5",
        "federation.min_train_clients=1",
        "training.rounds=6",
        "history.delta_t=1",
        "unlearning.requesters=[3]",  # first sampled in round 2 with seed 0
        'unlearning.methods=["rollback"]',
    )
    result = simulate(config, show_progress=False)
    restart = result.metrics.details["rollback"][0]["restart_round"]
    assert restart == result.history.first_participation(3) == 2
    assert parameter_distance(result.models["rollback"], result.models["retrain"]) == 0.0
    cost = result.metrics.cost
    assert cost.methods["rollback"]["client_epochs"] < cost.methods["retrain"]["client_epochs"]


@pytest.mark.simulation
def test_every_message_type_crosses_the_ray_engine(tmp_path: Path) -> None:
    # DP-SGD clients (privacy query), record-level requests with commitments, PGA's
    # ascent message, the monitor, and an inference-attacker client (attack query).
    config = small_config(
        tmp_path,
        "simulation.backend=ray",
        "training.rounds=3",
        "privacy.mode=local",
        "privacy.noise_multiplier=0.5",
        "unlearning.scope=canary",
        'unlearning.methods=["federaser", "pga"]',
        "defense.monitor=true",
        "attack.enabled=true",
        "attack.attacker=client",
        "attack.client=3",
        'roles.3="inference-attacker"',
        "attack.shadow_models=1",
        "attack.shadow_epochs=2",
    )
    metrics = simulate(config, show_progress=False).metrics
    assert metrics.requests[0]["accepted"] and metrics.forgotten["records"]["0"]
    assert metrics.privacy.training_epsilon > 0
    assert set(metrics.monitor) == {"federaser", "pga", "retrain"}
    assert metrics.details["pga"][0]["ascents"][0]["records"] > 0
    assert set(metrics.attacks.metrics["mia_gap"]) == {"federaser", "pga", "retrain"}
