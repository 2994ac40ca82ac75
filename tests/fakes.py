"""Stand-in clients whose local training is a known linear map, for hand-checked tests.

Client ``k`` "trains" by returning ``W = g + epochs * (d_k - a * g)`` from the global
model ``g``: with ``a = 0`` (the default) every update is ``epochs * d_k`` and every
aggregate can be computed by hand; with ``a > 0`` the update depends on the model the
way a gradient step on a quadratic does. They run as a real Flower ``ClientApp`` on an
:class:`~fedunlearn.inline.InlineGrid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.federation.inline import InlineGrid
from fedunlearn.federation.protocol import (
    ARRAYS,
    CLIENT_ID,
    CONFIG,
    METRICS,
    NUM_EXAMPLES,
    TrainInstruction,
    TrainReport,
)
from fedunlearn.federation.recording import RecordingFedAvg
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.federation.trainer import trainer_factory
from fedunlearn.history import MemoryHistory, UpdateHistory
from fedunlearn.learning.arrays import Arrays, from_record, to_record
from fedunlearn.unlearning.method import UnlearningJob
from fedunlearn.unlearning.requests import ForgetSet, UnlearningRequest, encode_requests


@dataclass
class LinearClients:
    """Directions ``d_k``, example counts, and a log of every train call."""

    directions: Mapping[int, np.ndarray]
    examples: Mapping[int, int]
    curvature: float = 0.0
    failing: set[int] = field(default_factory=set)
    requests: Mapping[int, list[UnlearningRequest]] = field(default_factory=dict)
    calls: list[tuple[int, TrainInstruction]] = field(default_factory=list)
    configs: list[dict] = field(default_factory=list)

    def app(self) -> ClientApp:
        app = ClientApp()

        def cid(context: Context) -> int:
            return int(context.node_config["partition-id"])

        @app.query("identify")
        def identify(msg: Message, context: Context) -> Message:
            k = cid(context)
            metrics = MetricRecord({CLIENT_ID: k, NUM_EXAMPLES: self.examples[k]})
            return Message(RecordDict({METRICS: metrics}), reply_to=msg)

        @app.train()
        def train(msg: Message, context: Context) -> Message:
            k = cid(context)
            if k in self.failing:
                raise RuntimeError(f"client {k} exploded")
            instruction = TrainInstruction.from_config(msg.content[CONFIG])
            self.calls.append((k, instruction))
            self.configs.append(dict(msg.content[CONFIG]))
            g = from_record(msg.content[ARRAYS])
            step = self.directions[k] - self.curvature * g["w"]
            w = {"w": g["w"] + instruction.epochs * step}
            report = TrainReport(self.examples[k], k, instruction.epochs, 1, 0.0)
            content = RecordDict({ARRAYS: to_record(w), METRICS: report.to_metrics()})
            return Message(content, reply_to=msg)

        @app.query("requests")
        def requests(msg: Message, context: Context) -> Message:
            return Message(encode_requests(self.requests.get(cid(context), [])), reply_to=msg)

        return app


def linear_federation(
    directions: Mapping[int, list[float]], examples: Mapping[int, int], **kwargs: object
) -> tuple[LinearClients, InlineGrid, ClientRegistry]:
    clients = LinearClients(
        {k: np.array(v, dtype=np.float64) for k, v in directions.items()}, dict(examples), **kwargs
    )
    grid = InlineGrid(clients.app(), num_nodes=len(directions), seed=3)
    registry = ClientRegistry.discover(grid, expected=len(directions), connect_timeout=1)
    return clients, grid, registry


def zeros(n: int = 2) -> Arrays:
    return {"w": np.zeros(n, dtype=np.float64)}


def train_linear(
    grid: InlineGrid,
    registry: ClientRegistry,
    *,
    rounds: int,
    delta_t: int,
    epochs: float = 2.0,
    sampling: SamplingPlan | None = None,
    seed: int = 0,
) -> tuple[UpdateHistory, Arrays, TrainInstruction, RecordingFedAvg]:
    """Train with the recording FedAvg from zeros; return history and final model."""
    history = MemoryHistory(delta_t, parameter_keys=["w"])
    instruction = TrainInstruction(0, epochs, 8, 0.1)
    strategy = RecordingFedAvg.for_phase(
        registry=registry,
        instruction=instruction,
        history=history,
        sampling=sampling or SamplingPlan(),
        seed=seed,
    )
    result = strategy.start(grid, to_record(zeros()), num_rounds=rounds)
    final = from_record(result.arrays)
    history.set_final_model(final)
    return history, final, instruction, strategy


def job_for(
    grid: InlineGrid,
    registry: ClientRegistry,
    history: UpdateHistory,
    original: Arrays,
    instruction: TrainInstruction,
    forget: set[int] | ForgetSet,
    rounds: int,
    sampling: SamplingPlan | None = None,
    seed: int = 0,
) -> UnlearningJob:
    return UnlearningJob(
        grid=grid,
        registry=registry,
        history=history,
        forget=forget if isinstance(forget, ForgetSet) else ForgetSet.of(forget),
        original=original,
        instruction=instruction,
        rounds=rounds,
        sampling=sampling or SamplingPlan(),
        seed=seed,
        trainer=trainer_factory(RecordingFedAvg),
    )
