"""One experiment from birth to audit, run inside a Flower ServerApp.

:func:`run_experiment` runs the phases of DESIGN.md section 1 against a Flower
``Grid``: it does not know whether the clients are Ray actors, calls in this process
or SuperNodes on other machines.

1. discover the clients (stable ids);
2. train with the history-keeping strategy;
3. gather unlearning requests (a query round);
4. verify them (owner-only, well-formed);
5. unlearn with every configured method, and retrain from scratch without the
   forgotten data (the exact reference) -- all at once, or one accepted request
   after another (``unlearning.sequential``), each from the model the last one left;
6. audit every model against the reference and write the results folder.

Only the audit reads ground truth (test set, forgotten data, canary), from
:mod:`fedunlearn.scenario`.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp import Grid
from torch import nn

from fedunlearn.arrays import (
    Arrays,
    from_record,
    load_arrays,
    model_to_arrays,
    to_record,
    trainable_keys,
)
from fedunlearn.audit import AuditData, Auditor
from fedunlearn.components import Components, resolve_components
from fedunlearn.config import ExperimentConfig
from fedunlearn.data import ArrayDataset
from fedunlearn.federation import ClientRegistry
from fedunlearn.history import UpdateHistory
from fedunlearn.metrics import accuracy, attack_success_rate
from fedunlearn.models import build_model
from fedunlearn.progress import PhaseProgress
from fedunlearn.protocol import TrainInstruction
from fedunlearn.report import write_failure, write_results
from fedunlearn.requests import ForgetSet, Verification, gather_requests, verify_requests
from fedunlearn.scenario import FederatedData, federated_data
from fedunlearn.training import predict_logits
from fedunlearn.unlearning import SamplingPlan, UnlearningJob, UnlearningOutcome, round_metrics

log = logging.getLogger(__name__)

__all__ = ["ExperimentResult", "resolve_components", "resolve_run_dir", "run_experiment"]


def resolve_run_dir(config: ExperimentConfig) -> Path:
    """The results folder of this run (created, absolute)."""
    if config.output.run_dir:
        path = Path(config.output.run_dir)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(config.output.dir) / f"{config.name}-seed{config.seed}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


@dataclass
class RoundLog:
    """Evaluation after every round of every phase (the per-round CSV)."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, phase: str, server_round: int, metrics: dict[str, float]) -> None:
        self.rows.append({"phase": phase, "round": server_round, **metrics})

    def merge(self, phase: str, per_round: dict[int, dict[str, float]]) -> None:
        """Add client-side metrics to the rows of ``phase``."""
        for row in self.rows:
            if row["phase"] == phase and row["round"] in per_round:
                row.update(per_round[row["round"]])


@dataclass
class ExperimentResult:
    """What a run produced (also written to ``run_dir``).

    ``models`` holds the final weights by label (``original``, each method, the
    reference); ``metrics`` is what ``metrics.json`` holds.
    """

    config: ExperimentConfig
    run_dir: Path
    metrics: dict[str, Any]
    rounds: list[dict[str, Any]]
    models: dict[str, Arrays]
    history: UpdateHistory | None


class ServerEvaluator:
    """Centralised evaluation of the global model after each round (harness-side)."""

    def __init__(
        self,
        new_model: Callable[[], nn.Module],
        test: ArrayDataset,
        triggered: ArrayDataset | None,
        target_class: int,
        round_log: RoundLog,
        progress: PhaseProgress,
    ) -> None:
        self.new_model = new_model
        self.test = test
        self.triggered = triggered
        self.target_class = target_class
        self.round_log = round_log
        self.progress = progress

    def measure(self, arrays: Arrays) -> dict[str, float]:
        model = self.new_model()
        load_arrays(model, arrays)
        out = {"accuracy": accuracy(predict_logits(model, self.test.x), self.test.y)}
        if self.triggered is not None:
            out["attack_success_rate"] = attack_success_rate(
                predict_logits(model, self.triggered.x), self.target_class
            )
        return out

    def for_phase(self, phase: str) -> Callable[[int, ArrayRecord], MetricRecord | None]:
        started = time.perf_counter()

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            metrics = self.measure(from_record(arrays))
            elapsed = time.perf_counter() - started
            self.round_log.add(phase, server_round, {**metrics, "seconds": elapsed})
            if server_round > 0:
                short = {"acc": metrics["accuracy"]}
                if "attack_success_rate" in metrics:
                    short["asr"] = metrics["attack_success_rate"]
                self.progress.advance(phase, short)
            return MetricRecord(metrics)

        return evaluate


def run_experiment(
    grid: Grid,
    config: ExperimentConfig,
    *,
    run_dir: Path | None = None,
    progress: PhaseProgress | None = None,
) -> ExperimentResult:
    """Run every phase of ``config`` on ``grid`` and write the results folder.

    A failure keeps what was done: the rounds so far and the error are written to the
    run folder before the exception propagates.
    """
    components = resolve_components(config)
    run_dir = run_dir or resolve_run_dir(config)
    (run_dir / "config.toml").write_text(config.to_toml())
    run = _Run(grid, config, components, run_dir, progress or PhaseProgress(enabled=False))
    try:
        return run.execute()
    except BaseException as err:
        write_failure(run_dir, run.round_log.rows, err, traceback.format_exc())
        raise


def plan_stages(verification: Verification, sequential: bool) -> list[ForgetSet]:
    """What each unlearning stage forgets: everything at once, or request by request."""
    accepted = verification.accepted
    if not accepted:
        return []
    if not sequential:
        return [ForgetSet.from_requests(accepted)]
    return [ForgetSet.from_requests([r]) for r in accepted]


class _Run:
    """The state of one run while its phases execute."""

    def __init__(
        self,
        grid: Grid,
        config: ExperimentConfig,
        components: Components,
        run_dir: Path,
        progress: PhaseProgress,
    ) -> None:
        self.grid = grid
        self.config = config
        self.components = components
        self.run_dir = run_dir
        self.progress = progress
        self.round_log = RoundLog()
        self.started = time.perf_counter()
        self.world: FederatedData = federated_data(config)
        initial_model = self.new_model()
        self.initial = model_to_arrays(initial_model)
        self.parameter_keys = trainable_keys(initial_model)
        self.evaluator = ServerEvaluator(
            self.new_model,
            self.world.test,
            self.world.triggered_test,
            config.canary.target_class,
            self.round_log,
            progress,
        )
        fed, t = config.federation, config.training
        self.sampling = SamplingPlan(
            fraction_train=fed.fraction_train,
            min_train_clients=fed.min_train_clients,
            fraction_evaluate=fed.fraction_evaluate,
            min_reply_fraction=fed.min_reply_fraction,
            timeout=fed.timeout,
        )
        self.instruction = TrainInstruction(
            server_round=0,
            epochs=t.local_epochs,
            batch_size=t.batch_size,
            learning_rate=t.learning_rate,
            momentum=t.momentum,
            weight_decay=t.weight_decay,
            seed=config.seed,
            phase="train",
        )

    def new_model(self) -> nn.Module:
        m, info = self.config.model, self.world.info
        return build_model(m.name, info.input_shape, info.num_classes, m.hidden, self.config.seed)

    # ------------------------------------------------------------------ phases
    def execute(self) -> ExperimentResult:
        registry = self.discover()
        history, original, training_cost = self.train(registry)
        verification = self.gather_and_verify(registry)
        stages = plan_stages(verification, self.config.unlearning.sequential)
        if not stages:
            self.progress.note("no accepted unlearning request: nothing to unlearn")
        models, stage_reports, errors, details = self.unlearn(registry, history, original, stages)
        metrics = self.summarise(
            history, verification, stages, stage_reports, errors, details, training_cost
        )
        result = ExperimentResult(
            self.config, self.run_dir, metrics, self.round_log.rows, models, history
        )
        write_results(result)
        return result

    def discover(self) -> ClientRegistry:
        fed = self.config.federation
        self.progress.note(f"waiting for {fed.num_clients} clients")
        registry = ClientRegistry.discover(
            self.grid, fed.num_clients, connect_timeout=fed.connect_timeout, timeout=fed.timeout
        )
        self.progress.note(f"{len(registry)} clients connected: ids {registry.client_ids}")
        return registry

    def train(self, registry: ClientRegistry) -> tuple[UpdateHistory, Arrays, dict[str, float]]:
        config = self.config
        path = None
        if config.history.storage == "disk":
            path = Path(config.history.path) if config.history.path else self.run_dir / "history"
        history = UpdateHistory(config.history.delta_t, path, self.parameter_keys)
        trainer = self.components.trainer(
            registry=registry,
            instruction=self.instruction,
            history=history,
            sampling=self.sampling,
            seed=config.seed,
        )
        rounds = config.training.rounds
        self.progress.start("training", rounds)
        started = time.perf_counter()
        result = trainer.start(
            self.grid,
            to_record(self.initial),
            num_rounds=rounds,
            timeout=config.federation.timeout,
            evaluate_fn=self.evaluator.for_phase("training"),
        )
        trainer.cost.wall_seconds = time.perf_counter() - started
        self.round_log.merge("training", round_metrics(result))
        original = from_record(result.arrays)
        history.set_final_model(original)
        return history, original, trainer.cost.as_dict()

    def gather_and_verify(self, registry: ClientRegistry) -> Verification:
        fed = self.config.federation
        received = gather_requests(
            self.grid, registry, timeout=fed.timeout, min_fraction=fed.min_reply_fraction
        )
        verification = verify_requests(received, registry)
        for d in verification.decisions:
            verdict = "accepted" if d.accepted else "refused"
            what = (
                "nothing" if d.request is None else ForgetSet.from_requests([d.request]).describe()
            )
            self.progress.note(
                f"request from client {d.requester} to forget {what}: {verdict} ({d.reason})"
            )
        return verification

    def unlearn(
        self,
        registry: ClientRegistry,
        history: UpdateHistory,
        original: Arrays,
        stages: list[ForgetSet],
    ) -> tuple[dict[str, Arrays], list[dict[str, Any]], dict[str, str], dict[str, Any]]:
        """Run every method (and the reference) over the stages; audit each stage."""
        runs = self.components.to_run()
        current = {label: original for label, _ in runs}
        failed: dict[str, str] = dict(self.components.skipped)
        details: dict[str, Any] = {}
        reports: list[dict[str, Any]] = []
        forgotten = ForgetSet()
        for index, stage in enumerate(stages, start=1):
            forgotten = forgotten | stage
            suffix = f" [stage {index}]" if len(stages) > 1 else ""
            self.progress.note(f"unlearning{suffix}: {stage.describe()}")
            costs: dict[str, dict[str, float]] = {}
            for label, method in runs:
                if label in failed:
                    continue
                is_reference = label == self.components.reference_label
                phase = ("retraining" if is_reference else f"unlearning ({label})") + suffix
                if forgotten.record_level and not type(method).supports_records:
                    failed[label] = f"{label} forgets whole clients only; a request named records"
                    continue
                job = UnlearningJob(
                    grid=self.grid,
                    registry=registry,
                    history=history,
                    forget=forgotten,
                    new=stage,
                    original=current[label],
                    instruction=self.instruction,
                    rounds=self.config.training.rounds,
                    sampling=self.sampling,
                    seed=self.config.seed,
                    trainer=self.components.trainer,
                    new_model=self.new_model,
                    server_data=self.world.server_unlabelled,
                    evaluate_fn=self.evaluator.for_phase(phase),
                )
                self.progress.start(phase, method.expected_rounds(job))
                try:
                    outcome: UnlearningOutcome = method.unlearn(job)
                except Exception as err:
                    if is_reference:
                        raise
                    # One broken method must not cost the others (or the training).
                    failed[label] = f"{type(err).__name__}: {err}"
                    self.progress.note(f"[red]{label} failed[/]: {failed[label]}")
                    errors_dir = self.run_dir / "errors"
                    errors_dir.mkdir(exist_ok=True)
                    (errors_dir / f"{label}.txt").write_text(traceback.format_exc())
                    continue
                self.round_log.merge(phase, outcome.round_metrics)
                current[label] = outcome.arrays
                costs[label] = outcome.cost.as_dict()
                details.setdefault(label, []).append(outcome.details)
            reports.append(
                {
                    "stage": index,
                    "forget": stage.as_dict(),
                    "forgotten_so_far": forgotten.as_dict(),
                    "models": self.audit(forgotten, {"original": original, **current}, failed),
                    "cost": costs,
                }
            )
        models = {"original": original}
        models.update({k: v for k, v in current.items() if k not in failed and stages})
        return models, reports, failed, details

    def audit(
        self, forgotten: ForgetSet, models: dict[str, Arrays], failed: dict[str, str]
    ) -> dict[str, dict[str, float]]:
        reference = models[self.components.reference_label]
        parts = [self.world.client(c) for c in sorted(forgotten.clients)]
        parts += [self.world.records(c, np.asarray(ids)) for c, ids in forgotten.records]
        forgotten_data = ArrayDataset(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.ids for p in parts]),
        )
        auditor = Auditor(
            self.new_model,
            AuditData(
                self.world.test,
                forgotten_data,
                self.world.triggered_test,
                self.config.canary.target_class,
            ),
            reference,
            self.parameter_keys,
        )
        return {
            label: auditor.audit(arrays).as_dict()
            for label, arrays in models.items()
            if label not in failed
        }

    def summarise(
        self,
        history: UpdateHistory,
        verification: Verification,
        stages: list[ForgetSet],
        reports: list[dict[str, Any]],
        errors: dict[str, str],
        details: dict[str, Any],
        training_cost: dict[str, float],
    ) -> dict[str, Any]:
        c = self.components
        forgotten = ForgetSet()
        for stage in stages:
            forgotten = forgotten | stage
        cost: dict[str, Any] = {"training": training_cost}
        for report in reports:
            for label, stage_cost in report["cost"].items():
                total = cost.setdefault(label, dict.fromkeys(stage_cost, 0.0))
                for key, value in stage_cost.items():
                    total[key] += value
        cost["relative_to_reference"] = _relative_costs(cost, c.reference_label)
        methods = [label for label, _ in c.to_run()]
        return {
            "name": self.config.name,
            "seed": self.config.seed,
            "methods": [m for m in methods if m != c.reference_label],
            "method_options": {label: m.options() for label, m in c.methods.items()},
            "reference": c.reference_label,
            "forgotten": forgotten.as_dict(),
            "forgotten_clients": sorted(forgotten.clients),
            "requests": [d.as_dict() for d in verification.decisions],
            "models": reports[-1]["models"] if reports else {},
            "stages": reports,
            "errors": errors,
            "cost": cost,
            "history": {
                "storage": self.config.history.storage,
                "delta_t": history.delta_t,
                "kept_rounds": history.rounds,
                "bytes": history.nbytes,
                "disk_bytes": history.disk_bytes(),
                "bytes_needed": {label: m.history_bytes(history) for label, m in c.to_run()},
            },
            "details": details,
            "total_seconds": time.perf_counter() - self.started,
        }


def _relative_costs(cost: dict[str, Any], reference: str) -> dict[str, dict[str, float]]:
    ref = cost.get(reference)
    if ref is None:
        return {}
    return {
        label: {
            k: (c[k] / ref[k] if ref[k] else float("nan"))
            for k in ("client_epochs", "rounds", "wall_seconds")
        }
        for label, c in cost.items()
        if label not in ("training", "relative_to_reference")
    }
