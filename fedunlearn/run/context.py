"""What every phase of a run reads: the typed run context, and what training produced.

:class:`RunContext` is built once per run (or group of runs sharing training) by the
prepare phase; :class:`TrainedFederation` is what training and request gathering leave
for the phases after them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flwr.serverapp import Grid
from torch import nn

from fedunlearn.config import ExperimentConfig
from fedunlearn.data.world import FederatedData
from fedunlearn.defenses.checks import Verification
from fedunlearn.defenses.monitor import ImpactMonitor
from fedunlearn.evaluation.rounds import RoundLog, ServerEvaluator
from fedunlearn.federation.cost import Cost
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.federation.trainer import TrainerFactory
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.components import Components
from fedunlearn.run.failures import Failures
from fedunlearn.unlearning.method import UnlearningOutcome
from fedunlearn.unlearning.requests import ForgetSet


@dataclass
class RunContext:
    """The state every phase shares.

    Attributes
    ----------
    grid : Grid
        Flower's grid: Ray actors, inline calls or SuperNodes, it does not matter.
    config : ExperimentConfig
        The experiment (for a group sharing training: the first one's training part).
    home : Path
        Where files shared by the group go (a disk history).
    progress : PhaseProgress
        Progress bars and notes.
    world : FederatedData
        The simulated world: the harness's ground truth, read only by the audit.
    initial : Arrays
        The model training starts from.
    parameter_keys : list of str
        Trainable parameters (norms and distances use only these).
    new_model : callable
        A fresh model of the experiment's architecture.
    round_log, evaluator : RoundLog, ServerEvaluator
        Evaluation after every round of every phase.
    sampling, instruction : SamplingPlan, TrainInstruction
        How training samples clients and trains locally; every method's rounds too.
    trainer : TrainerFactory
        Builds the training strategy (wrapped for central DP when asked).
    monitor : ImpactMonitor, optional
        Checks every unlearned model before it is accepted (defence stage S2).
    outcomes : dict
        Method outcomes by (stage, method key, forget set), so a method several runs
        of a group ask for runs once; a string is a failure's text.
    """

    grid: Grid
    config: ExperimentConfig
    home: Path
    progress: PhaseProgress
    world: FederatedData
    initial: Arrays
    parameter_keys: list[str]
    new_model: Callable[[], nn.Module]
    round_log: RoundLog
    evaluator: ServerEvaluator
    sampling: SamplingPlan
    instruction: TrainInstruction
    trainer: TrainerFactory
    monitor: ImpactMonitor | None = None
    outcomes: dict[tuple[int, str, str], UnlearningOutcome | str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)


@dataclass
class TrainedFederation:
    """What a group of runs shares: the clients, one training, one set of requests."""

    registry: ClientRegistry
    history: UpdateHistory
    original: Arrays
    training_cost: Cost
    verification: Verification
    stages: list[ForgetSet]
    missing: dict[int, list[int]] = field(default_factory=dict)
    """Clients that failed or fell silent in training, by round."""

    @property
    def forgotten(self) -> ForgetSet:
        """Everything requested and accepted, over all stages."""
        total = ForgetSet()
        for stage in self.stages:
            total = total | stage
        return total


@dataclass
class ExperimentScope:
    """What the phases of one experiment of a group share (unlearn, audit, attack,
    report): the run context, the shared federation, and the experiment's own config,
    plugins and failures."""

    ctx: RunContext
    federation: TrainedFederation
    config: ExperimentConfig
    components: Components
    failures: Failures
