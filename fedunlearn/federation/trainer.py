"""The trainer contract: a Flower strategy that trains the federation for a phase.

Training, retraining and every method that runs federated rounds build their strategy
through one :class:`TrainerFactory` (:func:`trainer_factory` of ``training.strategy``;
by default :class:`~fedunlearn.federation.recording.RecordingFedAvg`), so they all
sample, train and count cost the same way. A trainer is a Flower ``Strategy`` (``start``
runs it) that also counts what its rounds cost. :func:`trainer_problems` checks a
strategy class against this contract before a run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result

from fedunlearn.federation.cost import Cost
from fedunlearn.federation.sampling import SamplingPlan

if TYPE_CHECKING:
    from fedunlearn.federation.protocol import TrainInstruction
    from fedunlearn.federation.recording import RecordingMixin
    from fedunlearn.federation.registry import ClientRegistry
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
    "phase",
    "epochs_scale",
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
    """Builds the trainer of a phase from the keyword arguments of
    :data:`TRAINER_ARGUMENTS` (their meaning: see
    :meth:`~fedunlearn.federation.recording.RecordingMixin.for_phase`). A method that
    needs a strategy of its own (FedEraser's calibration rounds) names its class in
    ``strategy_class``; further keyword arguments go to that class."""

    def __call__(
        self,
        *,
        registry: ClientRegistry,
        instruction: TrainInstruction | None = None,
        history: UpdateHistory | None = None,
        sampling: SamplingPlan | None = None,
        seed: int | None = 0,
        exclude: Collection[int] = (),
        forget_records: Mapping[int, Sequence[int]] | None = None,
        first_round: int = 1,
        phase: str | None = None,
        epochs_scale: float = 1.0,
        strategy_class: type[RecordingMixin] | None = None,
        **kwargs: Any,
    ) -> Trainer: ...


def trainer_factory(training_class: type[RecordingMixin]) -> TrainerFactory:
    """The factory that builds every phase's strategy as ``training_class.for_phase``,
    or, for a method that asks for a strategy class of its own, as that class (without
    the training class's own extra arguments)."""

    def build(*, strategy_class: type[RecordingMixin] | None = None, **kwargs: Any) -> Trainer:
        if strategy_class is None or strategy_class is training_class:
            return training_class.for_phase(**kwargs)
        plan = kwargs.pop("sampling", None) or SamplingPlan()
        return strategy_class.for_phase(sampling=replace(plan, strategy_kwargs={}), **kwargs)

    return build


def trainer_problems(strategy: Any, name: str) -> list[str]:
    """Why ``strategy`` (loaded for ``training.strategy = name``) cannot train a
    federation that unlearning can work from; empty when it can."""
    from fedunlearn.federation.recording import RecordingMixin

    if isinstance(strategy, type) and issubclass(strategy, RecordingMixin):
        return []
    return [
        f"training.strategy {name!r} is {strategy!r}, which keeps no update history: use "
        "'fedavg' (RecordingFedAvg), or a Flower strategy with "
        "fedunlearn.federation.recording.RecordingMixin first among its bases, e.g. "
        "class MyFedProx(RecordingMixin, FedProx) (docs/plugins.md)"
    ]
