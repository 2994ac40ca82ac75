"""Phase 2, train: federated training with the strategy that keeps the update history."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fedunlearn.federation.cost import Cost
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.history import UpdateHistory, new_history
from fedunlearn.learning.arrays import Arrays, from_record, to_record
from fedunlearn.run.context import RunContext
from fedunlearn.unlearning.method import round_metrics


@dataclass
class Training:
    """What training left: the history, the trained (original) model, its cost."""

    history: UpdateHistory
    original: Arrays
    cost: Cost
    missing: dict[int, list[int]]
    """Clients that failed or fell silent, by round (training went on without them)."""


class Train:
    """Train from the initial model for ``training.rounds`` rounds, keeping history."""

    name = "train"

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def history(self) -> UpdateHistory:
        """An empty history where ``[history]`` says (memory, or a folder)."""
        h = self.ctx.config.history
        path = None
        if h.storage == "disk":
            path = Path(h.path) if h.path else self.ctx.home / "history"
        return new_history(h.delta_t, path, self.ctx.parameter_keys, h.precision, h.compress)

    def run(self, registry: ClientRegistry) -> Training:
        ctx, config = self.ctx, self.ctx.config
        history = self.history()
        trainer = ctx.trainer(
            registry=registry,
            instruction=ctx.instruction,
            history=history,
            sampling=ctx.sampling,
            seed=config.seed,
        )
        rounds = config.training.rounds
        ctx.progress.start("training", rounds)
        started = time.perf_counter()
        result = trainer.start(
            ctx.grid,
            to_record(ctx.initial),
            num_rounds=rounds,
            timeout=config.federation.timeout,
            evaluate_fn=ctx.evaluator.for_phase("training", "training"),
        )
        trainer.cost.wall_seconds = time.perf_counter() - started
        ctx.round_log.merge("training", round_metrics(result))
        original = from_record(result.arrays)
        history.set_final_model(original)
        return Training(history, original, trainer.cost, dict(getattr(trainer, "failures", {})))
