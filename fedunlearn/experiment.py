"""One experiment from birth to audit, run inside a Flower ServerApp.

:func:`run_experiment` runs the phases of DESIGN.md section 1 against a Flower
``Grid``: it does not know whether the clients are Ray actors, threads in this process
or SuperNodes on other machines.

1. discover the clients (stable ids);
2. train with the history-keeping strategy;
3. gather unlearning requests (a query round);
4. verify them (owner-only, well-formed);
5. unlearn with the configured method;
6. retrain from scratch without the forgotten clients (the exact reference);
7. audit every model against the reference and write the results folder.

Only the audit reads ground truth (test set, forgotten data, canary), from
:mod:`fedunlearn.scenario`.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedunlearn.arrays import (
    Arrays,
    from_record,
    load_arrays,
    model_to_arrays,
    to_record,
    trainable_keys,
)
from fedunlearn.audit import AuditData, Auditor
from fedunlearn.config import ConfigError, ExperimentConfig
from fedunlearn.data import ArrayDataset
from fedunlearn.federation import ClientRegistry
from fedunlearn.history import UpdateHistory
from fedunlearn.metrics import accuracy, attack_success_rate
from fedunlearn.models import build_model
from fedunlearn.plugins import PluginError, load_plugin
from fedunlearn.progress import PhaseProgress
from fedunlearn.protocol import TrainInstruction
from fedunlearn.report import write_failure, write_results
from fedunlearn.requests import gather_requests, verify_requests
from fedunlearn.roles import load_role
from fedunlearn.scenario import federated_data
from fedunlearn.training import predict_logits
from fedunlearn.unlearning import (
    SamplingPlan,
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    make_method,
    round_metrics,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Components:
    """The plugins a config names, loaded and checked before anything runs."""

    method: UnlearningMethod
    reference: UnlearningMethod
    trainer: type


def resolve_components(config: ExperimentConfig) -> Components:
    """Load the method, reference, trainer and roles; ConfigError lists every problem."""
    problems: list[str] = []
    methods: dict[str, UnlearningMethod] = {}
    u = config.unlearning
    for name in dict.fromkeys([u.method, u.reference, *u.methods]):
        try:
            methods[name] = make_method(name, u.options_for(name))
            problems += methods[name].check(config)
        except ConfigError as err:
            problems += err.problems
    if u.reference in methods and not type(methods[u.reference]).exact:
        problems.append(
            f"unlearning.reference {u.reference!r} is not an exact method; audits need "
            "one (use 'retrain')"
        )
    trainer: type = object
    try:
        trainer = load_plugin("trainer", config.training.strategy)
        if not (isinstance(trainer, type) and issubclass(trainer, Strategy)):
            problems.append(
                f"training.strategy {config.training.strategy!r} is not a Flower Strategy"
            )
    except PluginError as err:
        problems.append(f"training.strategy: {err}")
    for role in {config.roles.default, *config.roles.clients.values()}:
        try:
            load_role(role)
        except (PluginError, TypeError) as err:
            problems.append(f"[roles]: {err}")
    if problems:
        raise ConfigError(problems)
    return Components(methods[u.method], methods[u.reference], trainer)


def resolve_run_dir(config: ExperimentConfig) -> Path:
    """The results folder of this run (created)."""
    if config.output.run_dir:
        path = Path(config.output.run_dir)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(config.output.dir) / f"{config.name}-seed{config.seed}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


@dataclass
class RoundLog:
    """Server-side evaluation after every round of every phase (the per-round CSV)."""

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
    """What a run produced (also written to ``run_dir``)."""

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
        new_model: Callable[[], Any],
        test: ArrayDataset,
        triggered: ArrayDataset | None,
        target_class: int,
        log_: RoundLog,
        progress: PhaseProgress,
    ) -> None:
        self.new_model = new_model
        self.test = test
        self.triggered = triggered
        self.target_class = target_class
        self.log = log_
        self.progress = progress

    def measure(self, arrays: Arrays) -> dict[str, float]:
        model = self.new_model()
        load_arrays(model, arrays)
        logits = predict_logits(model, self.test.x)
        out = {"accuracy": accuracy(logits, self.test.y)}
        if self.triggered is not None:
            out["attack_success_rate"] = attack_success_rate(
                predict_logits(model, self.triggered.x), self.target_class
            )
        return out

    def for_phase(self, phase: str) -> Callable[[int, ArrayRecord], MetricRecord | None]:
        started = time.perf_counter()

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            metrics = self.measure(from_record(arrays))
            self.log.add(phase, server_round, {**metrics, "seconds": time.perf_counter() - started})
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
    """Run every phase of ``config`` on ``grid`` and write the results folder."""
    components = resolve_components(config)
    run_dir = run_dir or resolve_run_dir(config)
    (run_dir / "config.toml").write_text(config.to_toml())
    progress = progress or PhaseProgress(enabled=False)
    round_log = RoundLog()
    started = time.perf_counter()
    try:
        return _run(grid, config, components, run_dir, progress, round_log, started)
    except BaseException as err:
        write_failure(run_dir, round_log.rows, err, traceback.format_exc())
        raise


def _run(
    grid: Grid,
    config: ExperimentConfig,
    components: Components,
    run_dir: Path,
    progress: PhaseProgress,
    round_log: RoundLog,
    started: float,
) -> ExperimentResult:
    world = federated_data(config)

    def new_model() -> Any:
        m = config.model
        return build_model(
            m.name, world.info.input_shape, world.info.num_classes, m.hidden, config.seed
        )

    initial_model = new_model()
    initial = model_to_arrays(initial_model)
    parameter_keys = trainable_keys(initial_model)
    evaluator = ServerEvaluator(
        new_model, world.test, world.triggered_test, config.canary.target_class, round_log, progress
    )
    fed = config.federation
    sampling = SamplingPlan(
        fraction_train=fed.fraction_train,
        min_train_clients=fed.min_train_clients,
        fraction_evaluate=fed.fraction_evaluate,
        min_reply_fraction=fed.min_reply_fraction,
        timeout=fed.timeout,
    )
    t = config.training
    instruction = TrainInstruction(
        server_round=0,
        epochs=t.local_epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        seed=config.seed,
        phase="train",
    )

    # 1. Discover the clients.
    progress.note(f"waiting for {fed.num_clients} clients")
    registry = ClientRegistry.discover(
        grid, fed.num_clients, connect_timeout=fed.connect_timeout, timeout=fed.timeout
    )
    progress.note(f"{len(registry)} clients connected: ids {registry.client_ids}")

    # 2. Train with history.
    history_path = None
    if config.history.storage == "disk":
        history_path = Path(config.history.path) if config.history.path else run_dir / "history"
    history = UpdateHistory(config.history.delta_t, history_path, parameter_keys)
    trainer = components.trainer(
        registry=registry,
        instruction=instruction,
        history=history,
        sampling=sampling,
        seed=config.seed,
    )
    progress.start("training", t.rounds)
    t0 = time.perf_counter()
    result = trainer.start(
        grid,
        to_record(initial),
        num_rounds=t.rounds,
        timeout=fed.timeout,
        evaluate_fn=evaluator.for_phase("training"),
    )
    trainer.cost.wall_seconds = time.perf_counter() - t0
    round_log.merge("training", round_metrics(result))
    original = from_record(result.arrays)
    history.set_final_model(original)
    costs = {"training": trainer.cost.as_dict()}

    # 3-4. Gather and verify requests.
    received = gather_requests(
        grid, registry, timeout=fed.timeout, min_fraction=fed.min_reply_fraction
    )
    verification = verify_requests(received, registry)
    for d in verification.decisions:
        verdict = "accepted" if d.accepted else "refused"
        progress.note(f"request from client {d.requester}: {verdict} ({d.reason})")
    forget = verification.forget
    models: dict[str, Arrays] = {"original": original}
    outcomes: dict[str, UnlearningOutcome] = {}
    if forget:
        job = UnlearningJob(
            grid=grid,
            registry=registry,
            history=history,
            forget=forget,
            original=original,
            instruction=instruction,
            rounds=t.rounds,
            sampling=sampling,
            seed=config.seed,
            trainer=components.trainer,
            requests=tuple(verification.accepted),
        )
        # 5-6. Unlearn, and retrain for reference.
        for label, method in _methods_to_run(components):
            phase = f"unlearning ({label})" if method is components.method else "retraining"
            steps = _expected_rounds(method, history, t.rounds)
            progress.start(phase, steps)
            outcome = method.unlearn(_with_evaluate(job, evaluator.for_phase(phase)))
            round_log.merge(phase, outcome.round_metrics)
            outcomes[label] = outcome
            models[label] = outcome.arrays
            costs[label] = outcome.cost.as_dict()
    else:
        progress.note("no accepted unlearning request: nothing to unlearn")

    # 7. Audit.
    metrics = _audit(config, components, world, forget, models, parameter_keys, new_model)
    metrics.update(
        {
            "name": config.name,
            "seed": config.seed,
            "method": components.method.name or config.unlearning.method,
            "method_options": components.method.options(),
            "reference": components.reference.name or config.unlearning.reference,
            "forgotten_clients": sorted(forget),
            "requests": [d.as_dict() for d in verification.decisions],
            "cost": costs,
            "history": {
                "storage": config.history.storage,
                "delta_t": history.delta_t,
                "kept_rounds": history.rounds,
                "bytes": history.nbytes,
                "disk_bytes": history.disk_bytes(),
            },
            "details": {k: o.details for k, o in outcomes.items()},
            "total_seconds": time.perf_counter() - started,
        }
    )
    metrics["cost"]["relative_to_reference"] = _relative_costs(costs, components)
    out = ExperimentResult(config, run_dir, metrics, round_log.rows, models, history)
    write_results(out)
    return out


def _methods_to_run(components: Components) -> list[tuple[str, UnlearningMethod]]:
    method, reference = components.method, components.reference
    label_m = method.name or "unlearned"
    if type(method) is type(reference) and method.options() == reference.options():
        return [(label_m, method)]
    return [(label_m, method), (reference.name or "reference", reference)]


def _expected_rounds(method: UnlearningMethod, history: UpdateHistory, rounds: int) -> int:
    replayed = getattr(method, "replayed_rounds", None)
    return len(replayed(history)) if callable(replayed) else rounds


def _with_evaluate(job: UnlearningJob, evaluate_fn: Any) -> UnlearningJob:
    return replace(job, evaluate_fn=evaluate_fn)


def _audit(
    config: ExperimentConfig,
    components: Components,
    world: Any,
    forget: frozenset[int],
    models: dict[str, Arrays],
    parameter_keys: list[str],
    new_model: Callable[[], Any],
) -> dict[str, Any]:
    reference_label = components.reference.name or "reference"
    if not forget or reference_label not in models:
        return {"models": {}}
    forgotten = _concat([world.client(c) for c in sorted(forget)])
    auditor = Auditor(
        new_model,
        AuditData(world.test, forgotten, world.triggered_test, config.canary.target_class),
        models[reference_label],
        parameter_keys,
    )
    return {"models": {label: auditor.audit(a).as_dict() for label, a in models.items()}}


def _concat(parts: list[ArrayDataset]) -> ArrayDataset:
    return ArrayDataset(
        np.concatenate([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.ids for p in parts]),
    )


def _relative_costs(
    costs: dict[str, dict[str, float]], components: Components
) -> dict[str, dict[str, float]]:
    reference = costs.get(components.reference.name or "reference")
    if reference is None:
        return {}
    out = {}
    for label, cost in costs.items():
        if label == "training":
            continue
        out[label] = {
            k: (cost[k] / reference[k] if reference[k] else float("nan"))
            for k in ("client_epochs", "rounds", "wall_seconds")
        }
    return out
