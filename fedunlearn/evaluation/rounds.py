"""Evaluation of the global model after every round of every phase, and its log.

The server (in a simulation, the harness) measures clean test accuracy and canary
attack success after each round; the rows go to ``rounds.csv`` and ``rounds.png``.

The measurement runs in a background thread while the next round trains: Flower calls
``evaluate_fn`` between rounds, when every client waits for the server, so measuring
there left the clients idle for about 0.2 s a round (a sixth of a round of the default
experiment). The log waits for the measurements still running before anyone reads it
(:meth:`RoundLog.merge`, :meth:`RoundLog.rows_for`), so its rows are the same, in the
same order; a measurement that fails raises there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ArrayRecord, MetricRecord
from torch import nn

from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.federation.trainer import EvaluateFn
from fedunlearn.learning.arrays import Arrays, from_record, load_arrays
from fedunlearn.learning.metrics import accuracy, attack_success_rate
from fedunlearn.learning.training import predict_logits

RoundCallback = Callable[[str, dict[str, float]], None]
"""Called after each evaluated round with the phase and short figures (progress bars)."""


@dataclass
class RoundLog:
    """Evaluation after every round of every phase (the per-round CSV)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    settle: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    """Waits for rows still being measured (set by :class:`ServerEvaluator`)."""

    def _settled(self) -> None:
        if self.settle is not None:
            self.settle()

    def add(self, phase: str, server_round: int, metrics: dict[str, float], key: str) -> None:
        """One row: ``phase`` of the method ``key``, after ``server_round``."""
        self.rows.append({"phase": phase, "round": server_round, "key": key, **metrics})

    def merge(
        self, phase: str, per_round: dict[int, dict[str, float]], key: str = "training"
    ) -> None:
        """Add client-side metrics to the rows of ``phase`` (of the method ``key``)."""
        self._settled()
        for row in self.rows:
            if row["phase"] == phase and row.get("key") == key and row["round"] in per_round:
                row.update(per_round[row["round"]])

    def rows_for(self, keys: set[str]) -> list[dict[str, Any]]:
        """Rows of training and of the given method keys (without the key)."""
        self._settled()
        return [
            {k: v for k, v in row.items() if k != "key"}
            for row in self.rows
            if row.get("key") in keys or row.get("key") == "training"
        ]


class ServerEvaluator:
    """Centralised evaluation of the global model after each round (harness-side)."""

    def __init__(
        self,
        new_model: Callable[[], nn.Module],
        test: ArrayDataset,
        triggered: ArrayDataset | None,
        target_class: int,
        round_log: RoundLog,
        on_round: RoundCallback | None = None,
    ) -> None:
        self.new_model = new_model
        self.test = test
        self.triggered = triggered
        self.target_class = target_class
        self.round_log = round_log
        self.on_round = on_round
        round_log.settle = self.wait
        self._worker: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._model: nn.Module | None = None  # the worker's; built here, not there

    def wait(self) -> None:
        """Wait for the rounds still being measured; re-raise the first failure."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        for error in errors:
            if error is not None:
                raise error

    def measure(self, arrays: Arrays, model: nn.Module | None = None) -> dict[str, float]:
        """Clean accuracy and (with a canary) attack success rate of ``arrays`` (loaded
        into ``model``, or a new model)."""
        model = self.new_model() if model is None else model
        load_arrays(model, arrays)
        model.eval()
        out = {"accuracy": accuracy(predict_logits(model, self.test.x), self.test.y)}
        if self.triggered is not None:
            out["attack_success_rate"] = attack_success_rate(
                predict_logits(model, self.triggered.x), self.target_class
            )
        return out

    def for_phase(self, phase: str, key: str) -> EvaluateFn:
        """An ``evaluate_fn`` that logs rows of ``phase`` for the method ``key``."""
        started = time.perf_counter()

        def measure_and_log(server_round: int, weights: Arrays, model: nn.Module) -> None:
            metrics = self.measure(weights, model)
            elapsed = time.perf_counter() - started
            self.round_log.add(phase, server_round, {**metrics, "seconds": elapsed}, key)
            if server_round > 0 and self.on_round is not None:
                short = {"acc": metrics["accuracy"]}
                if "attack_success_rate" in metrics:
                    short["asr"] = metrics["attack_success_rate"]
                self.on_round(phase, short)

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if self._model is None:
                # Built in the caller's thread: a model's seeded initialisation touches
                # torch's global generator, which clients training here may be using.
                self._model = self.new_model()
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="fedunlearn-eval")
            weights = from_record(arrays)  # a copy: the strategy moves on
            self._pending.append(
                self._worker.submit(measure_and_log, server_round, weights, self._model)
            )
            return None  # the figures go to the round log, not to Flower's result

        return evaluate
