"""Phase 1, prepare: the simulated world, the initial model, the server's evaluator and
monitor, the trainer; then the clients, each under its stable id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from flwr.serverapp import Grid
from torch import nn

from fedunlearn.config import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import federated_data
from fedunlearn.defenses.central_dp import central_dp_trainer
from fedunlearn.defenses.monitor import ImpactMonitor
from fedunlearn.evaluation.rounds import RoundLog, ServerEvaluator
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.sampling import SamplingPlan, sample_size
from fedunlearn.federation.trainer import TrainerFactory, trainer_factory
from fedunlearn.learning.arrays import model_to_arrays, trainable_keys
from fedunlearn.learning.models import build_model
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.components import resolve_components
from fedunlearn.run.context import RunContext
from fedunlearn.seeding import derive_seed


class Prepare:
    """Build the run context, then discover the clients."""

    name = "prepare"

    def __init__(
        self, grid: Grid, config: ExperimentConfig, home: Path, progress: PhaseProgress
    ) -> None:
        self.grid = grid
        self.config = config
        self.home = home
        self.progress = progress

    def context(self) -> RunContext:
        """The context every later phase reads."""
        config = self.config
        world = federated_data(config)
        m, info = config.model, world.info

        def new_model() -> nn.Module:
            return build_model(m.name, info.input_shape, info.num_classes, m.hidden, config.seed)

        initial_model = new_model()
        round_log = RoundLog()
        fed, t = config.federation, config.training
        return RunContext(
            grid=self.grid,
            config=config,
            home=self.home,
            progress=self.progress,
            world=world,
            initial=model_to_arrays(initial_model),
            parameter_keys=trainable_keys(initial_model),
            new_model=new_model,
            round_log=round_log,
            evaluator=ServerEvaluator(
                new_model,
                world.test,
                world.triggered_test,
                config.canary.target_class,
                round_log,
                self.progress.advance,
            ),
            sampling=SamplingPlan(
                fraction_train=fed.fraction_train,
                min_train_clients=fed.min_train_clients,
                fraction_evaluate=fed.fraction_evaluate,
                min_reply_fraction=fed.min_reply_fraction,
                timeout=fed.timeout,
            ),
            instruction=TrainInstruction(
                server_round=0,
                epochs=t.local_epochs,
                batch_size=t.batch_size,
                learning_rate=t.learning_rate,
                momentum=t.momentum,
                weight_decay=t.weight_decay,
                seed=config.seed,
                phase="train",
            ),
            trainer=self._trainer(),
            monitor=self._monitor(world.test, new_model),
        )

    def _trainer(self) -> TrainerFactory:
        config = self.config
        trainer = trainer_factory(resolve_components(config).trainer)
        p, fed = config.privacy, config.federation
        if p.mode == "central":
            sampled = sample_size(fed.num_clients, fed.fraction_train, fed.min_train_clients)
            return central_dp_trainer(trainer, p.noise_multiplier, p.clipping_norm, sampled)
        return trainer

    def _monitor(
        self, test: ArrayDataset, new_model: Callable[[], nn.Module]
    ) -> ImpactMonitor | None:
        d = self.config.defense
        if not d.monitor:
            return None
        rng = np.random.default_rng(derive_seed(self.config.seed, "validation") % 2**32)
        size = min(d.validation_size, len(test))
        validation = test.subset(np.sort(rng.choice(len(test), size, replace=False)))
        return ImpactMonitor(new_model, validation, d.max_accuracy_drop, d.max_trigger_rise)

    def discover(self, ctx: RunContext) -> ClientRegistry:
        """Wait for every client; learn each one's stable id."""
        fed = self.config.federation
        self.progress.note(f"waiting for {fed.num_clients} clients")
        registry = ClientRegistry.discover(
            self.grid, fed.num_clients, connect_timeout=fed.connect_timeout, timeout=fed.timeout
        )
        self.progress.note(f"{len(registry)} clients connected: ids {registry.client_ids}")
        return registry
