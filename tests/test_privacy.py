"""Differential privacy: DP-SGD really clips and noises; each client's epsilon is what
Opacus's accountant gives for the steps it took; central DP's epsilon."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flwr.app import RecordDict
from opacus.accountants import RDPAccountant

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.defenses.central_dp import central_epsilon_of_rounds, effective_noise
from fedunlearn.defenses.privacy import DPTraining, train_privately
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.learning.arrays import model_to_arrays
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import train_locally
from fedunlearn.roles.role import ClientRole
from fedunlearn.roles.setup import ClientSetup

INFO = DatasetInfo("toy", (1, 4, 4), 3)


def toy(n: int = 64, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int64)
    x = rng.normal(0, 1, (n, 1, 4, 4)).astype(np.float32)
    return ArrayDataset(x, y, np.arange(n))


def flat(model: torch.nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def one_step(dp: DPTraining | None, seed: int = 0) -> np.ndarray:
    """The update of one step at learning rate 1 from a fixed model."""
    model = build_model("mlp", INFO.input_shape, 3, 8, seed=0)
    start = flat(model)
    data = toy()
    if dp is None:
        train_locally(model, data, epochs=1 / 4, batch_size=16, learning_rate=1.0, seed=seed)
    else:
        train_privately(
            model,
            data,
            epochs=1 / 4,
            batch_size=16,
            learning_rate=1.0,
            momentum=0.0,
            seed=seed,
            dp=dp,
            history=[],
        )
    return flat(model) - start


def test_dp_sgd_clips_per_sample_gradients() -> None:
    # One step at learning rate 1 moves the weights by the mean of the clipped
    # per-sample gradients (no noise): at most the clipping norm 0.01. Plain SGD moves
    # them much further.
    clipped = one_step(DPTraining(noise_multiplier=0.0, max_grad_norm=0.01))
    assert 0 < np.linalg.norm(clipped) <= 0.01 * (1 + 1e-5)
    assert np.linalg.norm(one_step(None)) > 0.1


def test_dp_sgd_adds_noise_of_the_configured_size() -> None:
    # Same batches, with and without noise: the difference is the noise, std
    # sigma * C / expected batch size per coordinate (Opacus divides the noised sum by
    # the expected batch size, 16 here).
    quiet = one_step(DPTraining(noise_multiplier=0.0, max_grad_norm=1.0))
    noisy = one_step(DPTraining(noise_multiplier=2.0, max_grad_norm=1.0))
    std = np.std(noisy - quiet)
    assert std == pytest.approx(2.0 * 1.0 / 16, rel=0.2)


def local_dp_config(overrides: list[str]) -> ExperimentConfig:
    """A small MLP trained by local-DP clients, with ``overrides``."""
    return ExperimentConfig().with_overrides(
        ["model.name=mlp", "model.hidden=8", "privacy.mode=local", *overrides]
    )


def test_a_clients_epsilon_is_opacus_accountant_fed_its_steps() -> None:
    config = local_dp_config(
        [
            "privacy.noise_multiplier=1.1",
            "privacy.max_grad_norm=1.0",
            "privacy.delta=1e-5",
        ]
    )
    data = toy(80)
    role = ClientRole(ClientSetup(3, data, INFO, config, RecordDict()))
    start = model_to_arrays(build_model("mlp", INFO.input_shape, 3, 8, seed=0))
    steps = 0
    for server_round in (1, 2, 3):
        _, report = role.fit(start, TrainInstruction(server_round, 1.0, 16, 0.1))
        steps += report.steps
    _, calib = role.fit(start, TrainInstruction(1, 0.5, 16, 0.1, phase="calibrate"))
    independent = RDPAccountant()
    independent.history = [(1.1, 16 / 80, steps)]
    spent = role.privacy_spent()
    assert spent["train"] == pytest.approx(independent.get_epsilon(1e-5), rel=1e-9)
    independent.history = [(1.1, 16 / 80, steps + calib.steps)]
    assert spent["calibrate"] == pytest.approx(independent.get_epsilon(1e-5), rel=1e-9)
    assert spent["calibrate"] > spent["train"]


def test_target_epsilon_is_spent_by_the_planned_training() -> None:
    config = local_dp_config(
        [
            "privacy.target_epsilon=3.0",
            "training.rounds=4",
            "training.local_epochs=1",
            "training.batch_size=16",
        ]
    )
    role = ClientRole(ClientSetup(0, toy(80), INFO, config, RecordDict()))
    start = model_to_arrays(build_model("mlp", INFO.input_shape, 3, 8, seed=0))
    for server_round in range(1, 5):
        role.fit(start, TrainInstruction(server_round, 1.0, 16, 0.1))
    assert 0.99 * 3.0 <= role.privacy_spent()["train"] <= 3.0


def test_target_epsilon_is_met_when_the_server_samples_a_few_clients_per_round() -> None:
    from fedunlearn.federation.sampling import sample_clients

    config = local_dp_config(
        [
            "privacy.target_epsilon=3.0",
            "federation.num_clients=10",
            "federation.fraction_train=0.1",
            "federation.min_train_clients=3",
            "training.rounds=8",
            "training.local_epochs=1",
            "training.batch_size=16",
        ]
    )
    start = model_to_arrays(build_model("mlp", INFO.input_shape, 3, 8, seed=0))
    for client in (0, 7):
        role = ClientRole(ClientSetup(client, toy(80), INFO, config, RecordDict()))
        rounds = [
            r for r in range(1, 9) if client in sample_clients(range(10), 0.1, 3, config.seed, r)
        ]
        assert 0 < len(rounds) < 8  # sampled in some rounds only: 3 of 10 each round
        for server_round in rounds:
            role.fit(start, TrainInstruction(server_round, 1.0, 16, 0.1))
        assert 0.99 * 3.0 <= role.privacy_spent()["train"] <= 3.0


def test_central_epsilon_is_bounded_by_the_gaussian_mechanisms_zcdp() -> None:
    # T rounds of the Gaussian mechanism with noise sigma, no sampling, are
    # rho-zCDP with rho = T / (2 sigma^2), hence (rho + 2 sqrt(rho ln(1/delta)), delta)-DP
    # (Bun and Steinke 2016): sigma=2, T=10, delta=1e-5 gives 8.837. The RDP accountant
    # is a little tighter, never looser.
    rho = 10 / (2 * 2.0**2)
    bound = rho + 2 * math.sqrt(rho * math.log(1e5))
    assert bound == pytest.approx(8.837, abs=1e-3)
    eps = central_epsilon_of_rounds([(2.0, 10)], 1e-5)
    assert 0.85 * bound < eps <= bound
    # more rounds, more epsilon; no noise, no bound
    assert central_epsilon_of_rounds([(2.0, 20)], 1e-5) > eps
    assert central_epsilon_of_rounds([(0.0, 5)], 1e-5) == float("inf")


def test_the_effective_central_noise_follows_the_averaged_clients_and_weights() -> None:
    # Flower's noise: sigma C / sampled; one client moves a weighted mean by w_max C.
    assert effective_noise(1.0, 4, [100] * 4, 4) == pytest.approx(1.0)
    assert effective_noise(1.0, 4, [100] * 4, 3) == pytest.approx(0.75)  # w_max = 1/3
    # counts 200, 100, 100, 100: w_max = 200 / (200 + 3 * 100) = 0.4 -> 1 / 1.6
    assert effective_noise(1.0, 4, [200, 100, 100, 100], 4) == pytest.approx(0.625)
    assert effective_noise(2.0, 4, [200, 100, 100, 100], 4) == pytest.approx(1.25)


def test_central_dp_bounds_only_methods_whose_client_work_it_noises(tmp_path) -> None:
    from fedunlearn.apps.simulation import simulate
    from tests.conftest import small_config

    config = small_config(
        tmp_path,
        "privacy.mode=central",
        "privacy.noise_multiplier=1.0",
        "privacy.clipping_norm=1.0",
        'unlearning.methods=["federaser", "finetune", "pga"]',
        "unlearning.finetune.rounds=2",
    )
    privacy = simulate(config, show_progress=False).metrics.privacy
    train = privacy.training_epsilon
    noise = privacy.details["effective_noise"]
    # one client of 4 forgotten: 3 updates averaged where the noise was set for 4
    assert noise["after_unlearning"] < noise["training"] <= 1.0
    assert train == pytest.approx(
        central_epsilon_of_rounds([(noise["training"], 4)], privacy.delta)
    )
    # finetune: 4 training rounds + 2 rounds of its own, all released
    assert privacy.epsilon["finetune"] == pytest.approx(
        central_epsilon_of_rounds(
            [(noise["training"], 4), (noise["after_unlearning"], 2)], privacy.delta
        )
    )
    assert privacy.epsilon["retrain"] > train
    # federaser builds on stored, un-noised updates, pga on a plain-SGD ascent: no bound
    assert privacy.epsilon["federaser"] == float("inf")
    assert privacy.epsilon["pga"] == float("inf")


def test_a_dp_run_reports_each_clients_epsilon(tmp_path) -> None:
    from fedunlearn.apps.simulation import simulate
    from tests.conftest import small_config

    config = small_config(
        tmp_path, "privacy.mode=local", "privacy.noise_multiplier=1.0", "canary.memorization=0"
    )
    privacy = simulate(config, show_progress=False).metrics.privacy
    assert set(privacy.details["per_client"]) == {"0", "1", "2", "3"}
    assert privacy.epsilon["retrain"] > privacy.training_epsilon > 0
    assert "calibrate" in privacy.details["per_client"]["1"]


def test_runs_under_local_dp_do_not_share_a_federation_across_method_options() -> None:
    from fedunlearn.config.identity import training_key

    def key(*overrides: str) -> str:
        return training_key(ExperimentConfig().with_overrides(list(overrides)))

    # Without DP, method options do not change training: shared.
    assert key("unlearning.federaser.r=0.5") == key("unlearning.federaser.r=1.0")
    # With local DP each client's per-phase account would add up both runs' steps.
    assert key("privacy.mode=local", "unlearning.federaser.r=0.5") != key(
        "privacy.mode=local", "unlearning.federaser.r=1.0"
    )


def test_central_dp_noise_is_seeded_so_the_same_seed_gives_the_same_figures(tmp_path) -> None:
    from fedunlearn.apps.simulation import simulate
    from tests.conftest import small_config

    overrides = ("privacy.mode=central", "privacy.noise_multiplier=0.5", "training.rounds=2")
    runs = [
        simulate(small_config(tmp_path / name, *overrides), show_progress=False)
        for name in ("a", "b")
    ]
    assert runs[0].metrics.models == runs[1].metrics.models
    other = simulate(small_config(tmp_path / "c", *overrides, "seed=1"), show_progress=False)
    assert other.metrics.models != runs[0].metrics.models
