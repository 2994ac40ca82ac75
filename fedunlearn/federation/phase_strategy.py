"""Building the strategy of one phase (training, calibration, retraining, ...) of
fedunlearn's own federation or of an unlearning method: the body of
:meth:`~fedunlearn.federation.recording.RecordingMixin.for_phase`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from fedunlearn.federation.aggregation import round_summary
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.history import UpdateHistory

__all__ = ["phase_strategy"]

S = TypeVar("S")


def phase_strategy(
    cls: type[S],
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
    **kwargs: Any,
) -> S:
    """A ``cls`` (a recording strategy) for one phase: FedAvg's sampling arguments, the
    wrapped strategy's own arguments, record keys and the app's train/evaluate config
    from ``sampling``; ``seed`` also goes into fedunlearn's instruction; ``kwargs`` go
    to the strategy and override the plan."""
    plan = sampling or SamplingPlan()
    if instruction is not None and seed is not None:
        instruction = TrainInstruction(**{**instruction.__dict__, "seed": seed})
    arguments = {
        "train_metrics_aggr_fn": round_summary,
        **plan.strategy_kwargs,
        **plan.fedavg_kwargs(len(registry) if not registry.learning else None),
        **kwargs,
    }
    strategy = cls(
        **arguments,
        history=history,
        keep_history=history is not None,
        seed=seed,
        clients=registry,
        exclude=exclude,
        forget_records=forget_records,
        first_round=first_round,
        phase=phase or (instruction.phase if instruction else "train"),
        epochs_scale=epochs_scale,
        instruction=instruction,
        min_reply_fraction=plan.min_reply_fraction,
    )
    strategy.default_train_config = dict(plan.train_config)  # type: ignore[attr-defined]
    strategy.default_evaluate_config = dict(plan.evaluate_config)  # type: ignore[attr-defined]
    return strategy
