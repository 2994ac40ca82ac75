"""Projected gradient ascent (PGA): the client-side step and its reference model."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import RecordDict

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.federation.protocol import AscentInstruction
from fedunlearn.learning.arrays import model_to_arrays, to_record
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import evaluate, projected_gradient_ascent, train_locally
from fedunlearn.roles.role import ClientRole
from fedunlearn.roles.setup import LAST_MODEL, ClientSetup

INFO = DatasetInfo("toy", (1, 4, 4), 3)


def toy_data(n: int = 60, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 1, 4, 4)).astype(np.float32)
    x[np.arange(n), 0, y, 0] += 2.0  # a learnable signal
    return ArrayDataset(x, y.astype(np.int64), np.arange(n))


def trained_model(data: ArrayDataset) -> torch.nn.Module:
    model = build_model("logreg", INFO.input_shape, 3, 0, seed=1)
    train_locally(model, data, epochs=20, batch_size=16, learning_rate=0.5, seed=0)
    return model


def test_ascent_stays_in_the_ball_and_stops_once_accuracy_falls() -> None:
    data = toy_data()
    model = trained_model(data)
    assert evaluate(model, data)[1] > 0.9
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = projected_gradient_ascent(
        model,
        data,
        anchor,
        radius=30.0,
        epochs=50,
        batch_size=16,
        learning_rate=0.5,
        stop_accuracy=0.4,
    )
    assert result.distance <= 30.0 + 1e-5
    assert result.accuracy < 0.4
    assert evaluate(model, data)[1] == result.accuracy
    assert result.steps < 50 * 4  # stopped early


def test_a_tight_ball_keeps_the_model_close_even_without_early_stopping() -> None:
    data = toy_data()
    model = trained_model(data)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = projected_gradient_ascent(
        model,
        data,
        anchor,
        radius=0.05,
        epochs=2,
        batch_size=16,
        learning_rate=1.0,
        stop_accuracy=0.0,
    )
    assert result.steps == 8 and result.distance <= 0.05 + 1e-6


def test_client_reference_model_removes_its_own_share_of_the_aggregate() -> None:
    # w_ref = (w - p w_last) / (1 - p): with w = 2, w_last = 5, p = 0.25 -> w_ref = 1.
    config = ExperimentConfig().with_overrides(["model.name=logreg", "data.dataset=digits"])
    data = toy_data()
    state = RecordDict()
    template = model_to_arrays(build_model("logreg", INFO.input_shape, 3, 0, seed=0))
    state[LAST_MODEL] = to_record({k: np.full_like(v, 5.0) for k, v in template.items()})
    role = ClientRole(ClientSetup(0, data, INFO, config, state))
    global_model = {k: np.full_like(v, 2.0) for k, v in template.items()}
    # stop_accuracy above 1: no ascent step, so the result is the reference itself.
    instruction = AscentInstruction(0.25, 1.0, 1.0, 16, 0.1, 1.1, 0)
    weights, metrics = role.ascend(global_model, instruction)
    for v in weights.values():
        np.testing.assert_allclose(v, 1.0, rtol=1e-6)
    assert metrics["used-own-model"] == 1.0 and metrics["steps"] == 0.0
    # Absent from the last round (p = 0): the reference is the global model.
    weights, _ = role.ascend(global_model, AscentInstruction(0.0, 1.0, 1.0, 16, 0.1, 1.1, 0))
    for v in weights.values():
        np.testing.assert_allclose(v, 2.0)


def test_training_keeps_the_last_local_model_only_from_training_rounds() -> None:
    from fedunlearn.federation.protocol import TrainInstruction

    config = ExperimentConfig().with_overrides(["model.name=logreg"])
    state = RecordDict()
    role = ClientRole(ClientSetup(0, toy_data(), INFO, config, state))
    start = model_to_arrays(build_model("logreg", INFO.input_shape, 3, 0, seed=0))
    weights, _ = role.fit(start, TrainInstruction(1, 1.0, 16, 0.1))
    kept = state[LAST_MODEL]
    np.testing.assert_array_equal(kept["1.weight"].numpy(), weights["1.weight"])
    role.fit(start, TrainInstruction(2, 1.0, 16, 0.1, phase="calibrate"))
    np.testing.assert_array_equal(state[LAST_MODEL]["1.weight"].numpy(), weights["1.weight"])
