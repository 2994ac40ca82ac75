"""The trainer contract: a Flower strategy that trains the federation for a phase.

Training, retraining and every method that runs federated rounds build their strategy
through one :class:`TrainerFactory` (``training.strategy`` in the config; by default
:class:`~fedunlearn.federation.recording.RecordingFedAvg`), so they all sample, train
and count cost the same way. A trainer is a Flower ``Strategy`` (``start`` runs it)
that also counts what its rounds cost; its factory takes the keyword arguments of
:data:`TRAINER_ARGUMENTS`. :func:`trainer_problems` checks a class against this
contract before a run starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result

from fedunlearn.federation.cost import Cost

if TYPE_CHECKING:
    from fedunlearn.federation.protocol import TrainInstruction
    from fedunlearn.federation.registry import ClientRegistry
    from fedunlearn.federation.sampling import SamplingPlan
    from fedunlearn.history import UpdateHistory

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]
"""Flower's server-side ``evaluate_fn``: ``(round, arrays) -> metrics``."""

TRAINER_ARGUMENTS = (
    "registry",
    "instruction",
    "history",
    "sampling",
    "seed",
    "exclude",
    "forget_records",
    "first_round",
)
"""Keyword arguments every trainer factory accepts (see :class:`TrainerFactory`)."""


@runtime_checkable
class Trainer(Protocol):
    """A Flower strategy that runs the rounds of one phase and counts their cost."""

    cost: Cost

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: EvaluateFn | None = None,
    ) -> Result:
        """Run ``num_rounds`` rounds from ``initial_arrays`` (Flower's ``Strategy.start``)."""
        ...


class TrainerFactory(Protocol):
    """Builds the trainer of a phase, from the keyword arguments of
    :data:`TRAINER_ARGUMENTS` (their meaning: see
    :class:`~fedunlearn.federation.recording.RecordingFedAvg`, the default factory)."""

    def __call__(
        self,
        *,
        registry: ClientRegistry,
        instruction: TrainInstruction,
        history: UpdateHistory | None = None,
        sampling: SamplingPlan | None = None,
        seed: int = 0,
        exclude: Collection[int] = (),
        forget_records: Mapping[int, Sequence[int]] | None = None,
        first_round: int = 1,
    ) -> Trainer: ...


def trainer_problems(factory: Any, name: str) -> list[str]:
    """Why ``factory`` (loaded for ``training.strategy = name``) cannot be a trainer;
    empty when it can."""
    if not callable(factory):
        return [f"training.strategy {name!r} is {factory!r}, not a class or factory"]
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []  # a builtin or C callable: nothing to check before running it
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    missing = [a for a in TRAINER_ARGUMENTS if a not in params]
    if missing:
        return [
            f"training.strategy {name!r} does not take the trainer arguments {missing}: "
            "it cannot train with history or exclude forgotten clients. Subclass "
            "fedunlearn.federation.recording.RecordingFedAvg (see docs/plugins.md)"
        ]
    if isinstance(factory, type) and not callable(getattr(factory, "start", None)):
        return [f"training.strategy {name!r} has no start(): it is not a Flower strategy"]
    return []
