"""Per-round server evaluation (fedunlearn/evaluation/rounds.py): measured in a
background thread while the next round trains, the log the same as measuring in
place, failures raised where the log is read."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.evaluation.rounds import RoundLog, ServerEvaluator
from fedunlearn.learning.arrays import model_to_arrays, to_record


def _linear() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))


def _setup(on_round=None) -> tuple[ServerEvaluator, RoundLog, ArrayDataset]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    test = ArrayDataset(x, (x[:, 0] > 0).astype(np.int64), np.arange(40))
    log = RoundLog()
    trig = ArrayDataset(x[:10], np.zeros(10, dtype=np.int64), np.arange(10))
    return ServerEvaluator(_linear, test, trig, 1, log, on_round), log, test


def _weights(scale: float) -> dict[str, np.ndarray]:
    w = model_to_arrays(_linear())
    return {k: v * scale for k, v in w.items()}


def _by_hand(weights: dict[str, np.ndarray], test: ArrayDataset) -> float:
    w, b = weights["1.weight"], weights["1.bias"]
    predicted = np.argmax(test.x @ w.T + b, axis=1)
    return float(np.mean(predicted == test.y))


def test_rounds_are_logged_in_order_with_the_figures_of_their_weights() -> None:
    evaluator, log, test = _setup()
    evaluate = evaluator.for_phase("training", "training")
    rounds = {r: _weights(1.0 - 0.3 * r) for r in range(4)}
    for r, weights in rounds.items():
        assert evaluate(r, to_record(weights)) is None  # nothing for Flower's result
    rows = log.rows_for(set())  # waits for the rounds still being measured
    assert [row["round"] for row in rows] == [0, 1, 2, 3]
    for row in rows:
        assert row["accuracy"] == pytest.approx(_by_hand(rounds[row["round"]], test))
        assert row["attack_success_rate"] == pytest.approx(
            evaluator.measure(rounds[row["round"]])["attack_success_rate"]
        )


def test_measuring_runs_outside_the_callers_thread_and_progress_sees_every_round() -> None:
    seen: list[tuple[str, str]] = []

    def on_round(phase: str, short: dict[str, float]) -> None:
        seen.append((phase, threading.current_thread().name))

    evaluator, log, _ = _setup(on_round)
    evaluate = evaluator.for_phase("unlearning (x)", "x")
    for r in range(3):
        evaluate(r, to_record(_weights(1.0)))
    log.merge("unlearning (x)", {1: {"loss": 0.5}}, "x")  # waits, then merges
    assert [row.get("loss") for row in log.rows] == [None, 0.5, None]
    # Round 0 is the starting model: no progress line; the others from the worker.
    assert [phase for phase, _ in seen] == ["unlearning (x)"] * 2
    assert all(name.startswith("fedunlearn-eval") for _, name in seen)


def test_a_measurement_that_fails_raises_where_the_log_is_read() -> None:
    evaluator, log, _ = _setup()
    evaluate = evaluator.for_phase("training", "training")
    evaluate(0, to_record(_weights(1.0)))
    evaluate(1, ArrayRecord({}))  # no weights: loading them fails in the worker
    with pytest.raises(ValueError, match="arrays do not fit the model"):
        log.rows_for(set())
    # The failure is reported once; the log stays readable.
    assert [row["round"] for row in log.rows_for(set())] == [0]
