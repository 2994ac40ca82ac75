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

import json
import logging
import math
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

from fedunlearn.config.experiment import ExperimentConfig, digest
from fedunlearn.data.canary import triggered_test_set
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import FederatedData, federated_data
from fedunlearn.defenses.monitor import ImpactMonitor
from fedunlearn.defenses.privacy import (
    central_dp_trainer,
    central_epsilon_of_rounds,
    effective_noise,
    gather_epsilon,
    method_epsilon,
)
from fedunlearn.evaluation.auditor import AuditData, Auditor
from fedunlearn.evaluation.candidates import LeakageUnavailableError
from fedunlearn.evaluation.leakage import run_leakage_audit, write_leakage
from fedunlearn.evaluation.metrics import accuracy, attack_success_rate
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.registry import ClientRegistry, FederationError
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.history.store import UpdateHistory
from fedunlearn.learning.arrays import (
    Arrays,
    from_record,
    load_arrays,
    model_to_arrays,
    to_record,
    trainable_keys,
)
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import predict_logits
from fedunlearn.reporting.folder import write_failure, write_results
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.components import Components, resolve_components
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    round_metrics,
)
from fedunlearn.unlearning.requests import (
    ForgetSet,
    Verification,
    checks_for,
    gather_requests,
    verify_requests,
)

log = logging.getLogger(__name__)

__all__ = [
    "ExperimentResult",
    "resolve_components",
    "resolve_run_dir",
    "run_experiment",
    "run_group",
    "training_key",
]


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

    def add(self, phase: str, server_round: int, metrics: dict[str, float], key: str) -> None:
        self.rows.append({"phase": phase, "round": server_round, "key": key, **metrics})

    def merge(
        self, phase: str, per_round: dict[int, dict[str, float]], key: str = "training"
    ) -> None:
        """Add client-side metrics to the rows of ``phase`` (of the method ``key``)."""
        for row in self.rows:
            if row["phase"] == phase and row.get("key") == key and row["round"] in per_round:
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

    def for_phase(self, phase: str, key: str) -> Callable[[int, ArrayRecord], MetricRecord | None]:
        """An ``evaluate_fn`` that logs rows of ``phase`` for the method ``key``."""
        started = time.perf_counter()

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            metrics = self.measure(from_record(arrays))
            elapsed = time.perf_counter() - started
            self.round_log.add(phase, server_round, {**metrics, "seconds": elapsed}, key)
            if server_round > 0:
                short = {"acc": metrics["accuracy"]}
                if "attack_success_rate" in metrics:
                    short["asr"] = metrics["attack_success_rate"]
                self.progress.advance(phase, short)
            return MetricRecord(metrics)

        return evaluate


POST_TRAINING_KEYS = ("methods", "reference")
"""Keys of ``[unlearning]`` that do not change training or requests; together with the
method option tables, ``[attack]``, ``[release]`` and ``[output]`` they may differ
within a group of runs."""

POST_TRAINING_SECTIONS = ("output", "attack", "release")


def training_key(config: ExperimentConfig) -> str:
    """Identifies what a run shares with others: data, federation, training, history,
    roles and requests, with the seed. Runs with the same key train once."""
    raw = config.to_dict()
    for section in POST_TRAINING_SECTIONS:
        raw.pop(section, None)
    if config.privacy.mode != "local":
        # Under local DP each client keeps one privacy account per phase: two runs that
        # unlearn with differently set methods in one federation would add up their
        # phases' steps, so they do not share one.
        unlearning = raw.get("unlearning", {})
        for key in [
            k for k, v in unlearning.items() if isinstance(v, dict) or k in POST_TRAINING_KEYS
        ]:
            unlearning.pop(key)
    return digest(raw)


def method_key(method: UnlearningMethod) -> str:
    """Identifies a method run: its class and options (two configs asking for the same
    method with the same options share its result)."""
    options = json.dumps(method.options(), sort_keys=True, default=str)
    return f"{type(method).__module__}.{type(method).__qualname__}:{options}"


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
    dirs = [run_dir] if run_dir is not None else None
    return run_group(grid, [config], run_dirs=dirs, progress=progress)[0]


def run_group(
    grid: Grid,
    configs: list[ExperimentConfig],
    *,
    run_dirs: list[Path] | None = None,
    progress: PhaseProgress | None = None,
) -> list[ExperimentResult]:
    """Run experiments that differ only in their unlearning methods and options.

    They must share :func:`training_key`: the federation trains once, gathers requests
    once, and a method asked for by several of them (the reference, typically) runs
    once. Each experiment still gets its own complete results folder.
    """
    if len({training_key(c) for c in configs}) != 1:
        raise ValueError("run_group needs experiments that share data, training and requests")
    components = [resolve_components(c) for c in configs]
    dirs = run_dirs or [resolve_run_dir(c) for c in configs]
    for config, run_dir in zip(configs, dirs, strict=True):
        (run_dir / "config.toml").write_text(config.to_toml())
    run = _Run(grid, configs[0], dirs[0], progress or PhaseProgress(enabled=False))
    try:
        shared = run.prepare()
    except BaseException as err:
        for run_dir in dirs:
            write_failure(run_dir, run.rows_for(set()), err, traceback.format_exc())
        raise
    results = []
    for config, parts, run_dir in zip(configs, components, dirs, strict=True):
        try:
            results.append(run.finish(shared, config, parts, run_dir))
        except BaseException as err:
            # Keep the rounds of training and of every method that ran.
            keys = {method_key(m) for _, m in parts.to_run()}
            write_failure(run_dir, run.rows_for(keys), err, traceback.format_exc())
            raise
    return results


def _write_error(run_dir: Path, name: str, text: str) -> None:
    """Keep a failure's full text in ``errors/<name>.txt`` beside the results."""
    errors_dir = run_dir / "errors"
    errors_dir.mkdir(exist_ok=True)
    (errors_dir / f"{name}.txt").write_text(text)


def plan_stages(verification: Verification, sequential: bool) -> list[ForgetSet]:
    """What each unlearning stage forgets: everything at once, or request by request."""
    accepted = verification.accepted
    if not accepted:
        return []
    if not sequential:
        return [ForgetSet.from_requests(accepted)]
    return [ForgetSet.from_requests([r]) for r in accepted]


@dataclass
class _Shared:
    """What a group of experiments shares: one training and one set of requests."""

    registry: ClientRegistry
    history: UpdateHistory
    original: Arrays
    training_cost: dict[str, float]
    verification: Verification
    stages: list[ForgetSet]

    @property
    def forgotten(self) -> ForgetSet:
        """Everything requested and accepted, over all stages."""
        total = ForgetSet()
        for stage in self.stages:
            total = total | stage
        return total


class _Run:
    """The state of a run (or a group of runs sharing training) while phases execute."""

    def __init__(
        self, grid: Grid, config: ExperimentConfig, home: Path, progress: PhaseProgress
    ) -> None:
        self.grid = grid
        self.config = config
        self.home = home  # where shared files (a disk history) go
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
        self.trainer: Any = resolve_components(config).trainer
        p = config.privacy
        if p.mode == "central":
            sampled = min(
                fed.num_clients,
                max(fed.min_train_clients, int(fed.fraction_train * fed.num_clients)),
            )
            self.trainer = central_dp_trainer(
                self.trainer, p.noise_multiplier, p.clipping_norm, sampled
            )
        # (stage, method key) -> outcome, so a method several runs ask for runs once.
        self._outcomes: dict[tuple[int, str, str], UnlearningOutcome | str] = {}
        d = config.defense
        self.monitor: ImpactMonitor | None = None
        if d.monitor:
            rng = np.random.default_rng(derive_seed(config.seed, "validation") % 2**32)
            size = min(d.validation_size, len(self.world.test))
            validation = self.world.test.subset(
                np.sort(rng.choice(len(self.world.test), size, replace=False))
            )
            self.monitor = ImpactMonitor(
                self.new_model,
                validation,
                d.max_accuracy_drop,
                d.max_trigger_rise,
            )

    def new_model(self) -> nn.Module:
        m, info = self.config.model, self.world.info
        return build_model(m.name, info.input_shape, info.num_classes, m.hidden, self.config.seed)

    def privacy_report(
        self,
        shared: _Shared,
        config: ExperimentConfig,
        components: Components,
        reports: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Epsilon spent: per client (local DP) or by the server's releases (central).

        A method whose model rests on un-noised client work gets an infinite epsilon:
        under central DP every method that reads the stored (clipped, un-noised)
        updates; under both modes PGA, whose ascent is plain SGD on the client's data.
        """
        p, fed = config.privacy, config.federation
        methods = components.to_run()
        if p.mode == "central":
            # No amplification by sampling: the seeded sample is no secret (as Flower's
            # own accountant assumes), so each round counts in full. The noise each
            # round really has depends on how many updates are averaged and their
            # weights (see effective_noise).
            sampled = min(
                fed.num_clients,
                max(fed.min_train_clients, int(fed.fraction_train * fed.num_clients)),
            )
            ids = shared.registry.client_ids
            counts = [shared.registry.num_examples(c) for c in ids]
            gone = shared.forgotten.clients
            kept = [n for c, n in zip(ids, counts, strict=True) if c not in gone] or counts
            train = (
                effective_noise(p.noise_multiplier, sampled, counts, sampled),
                config.training.rounds,
            )
            # After unlearning a sampled forgotten client is left out of the average:
            # at worst all of them were sampled.
            after = effective_noise(p.noise_multiplier, sampled, kept, max(1, sampled - len(gone)))
            epsilon = {}
            for label, method in methods:
                extra = sum(int(r["cost"].get(label, {}).get("rounds", 0)) for r in reports)
                covered = type(method).central_dp and type(method).private_client_work
                epsilon[label] = (
                    central_epsilon_of_rounds([train, (after, extra)], p.delta)
                    if covered
                    else math.inf
                )
            return {
                "mode": "central",
                "delta": p.delta,
                "noise_multiplier": p.noise_multiplier,
                "effective_noise": {"training": train[0], "after_unlearning": after},
                "training_epsilon": central_epsilon_of_rounds([train], p.delta),
                "epsilon": epsilon,
                "assumes": (
                    "user-level DP, one client's clipped update as the unit; the noise "
                    "of each round is the configured one scaled to the largest weight a "
                    "client can have in the example-weighted average"
                ),
            }
        per_client = gather_epsilon(self.grid, shared.registry, fed.timeout)
        return {
            "mode": "local",
            "delta": p.delta,
            "training_epsilon": method_epsilon(per_client, None),
            "epsilon": {
                label: method_epsilon(per_client, type(m).phase)
                if type(m).private_client_work
                else math.inf
                for label, m in methods
            },
            "per_client": {str(c): v for c, v in sorted(per_client.items())},
        }

    def poison_test(self) -> ArrayDataset | None:
        """Test inputs with the camouflaged-poisoning trigger, when that abuse is set up."""
        m = self.config.malicious
        if m.behaviour != "camouflage" or m.poison_target >= self.world.info.num_classes:
            return None
        return triggered_test_set(
            self.world.test, m.poison_target, self.config.canary.trigger_size, corner="top-left"
        )

    def rows_for(self, keys: set[str]) -> list[dict[str, Any]]:
        """Round rows of training and of the given method keys (without the key)."""
        return [
            {k: v for k, v in row.items() if k != "key"}
            for row in self.round_log.rows
            if row.get("key") in keys or row.get("key") == "training"
        ]

    # ------------------------------------------------------------------ shared phases
    def prepare(self) -> _Shared:
        registry = self.discover()
        history, original, training_cost = self.train(registry)
        verification = self.gather_and_verify(registry)
        stages = plan_stages(verification, self.config.unlearning.sequential)
        if not stages:
            self.progress.note("no accepted unlearning request: nothing to unlearn")
        return _Shared(registry, history, original, training_cost, verification, stages)

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
            path = Path(config.history.path) if config.history.path else self.home / "history"
        history = UpdateHistory(config.history.delta_t, path, self.parameter_keys)
        trainer = self.trainer(
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
            evaluate_fn=self.evaluator.for_phase("training", "training"),
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
        d = self.config.defense
        verification = verify_requests(
            received, registry, checks_for(d.verify_owner, d.verify_commitment, d.max_requests)
        )
        for d in verification.decisions:
            verdict = "accepted" if d.accepted else "refused"
            what = (
                "nothing" if d.request is None else ForgetSet.from_requests([d.request]).describe()
            )
            self.progress.note(
                f"request from client {d.requester} to forget {what}: {verdict} ({d.reason})"
            )
        return verification

    # ------------------------------------------------------------------ per experiment
    def finish(
        self, shared: _Shared, config: ExperimentConfig, components: Components, run_dir: Path
    ) -> ExperimentResult:
        """Unlearn, audit and write the results of one experiment of the group."""
        models, reports, errors, details, keys = self.unlearn(shared, components, run_dir)
        metrics = self.summarise(shared, config, components, reports, errors, details)
        monitor = metrics["details"].pop("_monitor", None)
        if monitor is not None:
            metrics["monitor"] = monitor
            columns = metrics.setdefault("table_columns", {})
            for label, checks in monitor.items():
                columns.setdefault(label, {}).update(
                    {
                        "monitor_checks": len(checks),
                        "monitor_rejections": sum(not c["accepted"] for c in checks),
                    }
                )
        if config.privacy.mode != "none":
            metrics["privacy"] = self.privacy_report(shared, config, components, reports)
            metrics.setdefault("table_columns", {})
            for label in models:
                if label != "original":
                    column = metrics["table_columns"].setdefault(label, {})
                    column["epsilon"] = metrics["privacy"]["epsilon"].get(label, float("nan"))
                    column["training_epsilon"] = metrics["privacy"]["training_epsilon"]
        if config.attack.enabled and len(models) > 1:
            self.progress.note(
                f"leakage audit: {config.attack.attacker} attacks {len(models)} models"
            )
            try:
                leakage = run_leakage_audit(
                    config,
                    self.world,
                    models,
                    shared.forgotten,
                    self.new_model,
                    self.grid,
                    shared.registry,
                )
            except LeakageUnavailableError as err:
                # The other results stand; say why there is no leakage figure.
                self.progress.note(f"leakage audit skipped: {err}")
                metrics["attacks"] = {"skipped": str(err)}
            except FederationError:
                raise
            except Exception as err:  # a broken attack must not cost the audit's results
                self.progress.note(f"[red]leakage audit failed[/]: {type(err).__name__}: {err}")
                metrics["attacks"] = {"failed": f"{type(err).__name__}: {err}"}
                metrics.setdefault("errors", {})["leakage audit"] = f"{type(err).__name__}: {err}"
                metrics["status"] = "partial"  # a sweep redoes it; the rest is kept
                _write_error(run_dir, "leakage", traceback.format_exc())
            else:
                metrics["attacks"] = leakage.metrics
                metrics["attack_setup"] = leakage.setup
                columns = metrics.setdefault("table_columns", {})
                for label in models:
                    if label != "original":
                        columns.setdefault(label, {}).update(
                            leakage.columns_for(label, components.reference_label)
                        )
                write_leakage(leakage, run_dir, config.output.figures)
        result = ExperimentResult(
            config, run_dir, metrics, self.rows_for(keys), models, shared.history
        )
        write_results(result)
        return result

    def unlearn(
        self, shared: _Shared, components: Components, run_dir: Path
    ) -> tuple[dict[str, Arrays], list[dict[str, Any]], dict[str, str], dict[str, Any], set[str]]:
        """Run every method (and the reference) over the stages; audit each stage."""
        runs = components.to_run()
        current = {label: shared.original for label, _ in runs}
        failed: dict[str, str] = dict(components.skipped)
        details: dict[str, Any] = {}
        reports: list[dict[str, Any]] = []
        keys = {method_key(m) for _, m in runs}
        decisions: dict[str, list[dict[str, Any]]] = {}
        halted: set[str] = set()
        forgotten = ForgetSet()  # everything requested so far: what the audit checks
        # What each method has really served: a request the monitor rejected is not
        # carried out later as part of the running total.
        served = {label: ForgetSet() for label, _ in runs}
        for index, stage in enumerate(shared.stages, start=1):
            forgotten = forgotten | stage
            suffix = f" [stage {index}]" if len(shared.stages) > 1 else ""
            self.progress.note(f"unlearning{suffix}: {stage.describe()}")
            costs: dict[str, dict[str, float]] = {}
            for label, method in runs:
                if label in failed or label in halted:
                    continue
                is_reference = label == components.reference_label
                target = served[label] | stage
                if target.record_level and not type(method).supports_records:
                    failed[label] = f"{label} forgets whole clients only; a request named records"
                    continue
                phase = ("retraining" if is_reference else f"unlearning ({label})") + suffix
                outcome = self._outcome(shared, index, target, stage, method, current[label], phase)
                if isinstance(outcome, str):  # the method failed (and it is not the reference)
                    if is_reference:
                        raise RuntimeError(f"the reference {label} failed: {outcome}")
                    failed[label] = outcome
                    _write_error(run_dir, label, outcome)
                    continue
                costs[label] = outcome.cost.as_dict()
                details.setdefault(label, []).append(outcome.details)
                if self.monitor is not None:
                    decision = self.monitor.check(current[label], outcome.arrays)
                    decisions.setdefault(label, []).append({"stage": index, **decision.as_dict()})
                    verdict = "accepted" if decision.accepted else "REJECTED"
                    self.progress.note(f"monitor, {label}{suffix}: {verdict} ({decision.reason})")
                    # The reference stays the yardstick of the audit: its decision is
                    # recorded, its model kept.
                    if not decision.accepted and not is_reference:
                        if self.config.defense.on_anomaly == "halt":
                            halted.add(label)
                        continue
                current[label] = outcome.arrays
                served[label] = target
            reports.append(
                {
                    "stage": index,
                    "forget": stage.as_dict(),
                    "forgotten_so_far": forgotten.as_dict(),
                    "models": self.audit(
                        forgotten,
                        {"original": shared.original, **current},
                        failed,
                        components.reference_label,
                    ),
                    "cost": costs,
                }
            )
        models = {"original": shared.original}
        models.update({k: v for k, v in current.items() if k not in failed and shared.stages})
        if decisions:
            details["_monitor"] = decisions
        return models, reports, failed, details, keys

    def _outcome(
        self,
        shared: _Shared,
        index: int,
        forgotten: ForgetSet,
        stage: ForgetSet,
        method: UnlearningMethod,
        original: Arrays,
        phase: str,
    ) -> UnlearningOutcome | str:
        """The method's outcome for this stage: computed once per (stage, method key)."""
        key = method_key(method)
        cache = (index, key, json.dumps(forgotten.as_dict(), sort_keys=True))
        if cache in self._outcomes:
            return self._outcomes[cache]
        job = UnlearningJob(
            grid=self.grid,
            registry=shared.registry,
            history=shared.history,
            forget=forgotten,
            new=stage,
            original=original,
            instruction=self.instruction,
            rounds=self.config.training.rounds,
            sampling=self.sampling,
            seed=self.config.seed,
            trainer=self.trainer,
            new_model=self.new_model,
            server_data=self.world.server_unlabelled,
            evaluate_fn=self.evaluator.for_phase(phase, key),
        )
        self.progress.start(phase, method.expected_rounds(job))
        result: UnlearningOutcome | str
        try:
            result = method.unlearn(job)
            self.round_log.merge(phase, result.round_metrics, key)
        except FederationError:
            raise  # the federation itself is broken: no other method can run either
        except Exception as err:  # one broken method must not cost the others
            result = f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}"
            self.progress.note(f"[red]{phase} failed[/]: {type(err).__name__}: {err}")
        self._outcomes[cache] = result
        return result

    def audit(
        self,
        forgotten: ForgetSet,
        models: dict[str, Arrays],
        failed: dict[str, str],
        reference_label: str,
    ) -> dict[str, dict[str, float]]:
        reference = models[reference_label]
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
                poison_test=self.poison_test(),
                poison_target=self.config.malicious.poison_target,
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
        shared: _Shared,
        config: ExperimentConfig,
        components: Components,
        reports: list[dict[str, Any]],
        errors: dict[str, str],
        details: dict[str, Any],
    ) -> dict[str, Any]:
        c, history = components, shared.history
        forgotten = shared.forgotten
        cost: dict[str, Any] = {"training": shared.training_cost}
        for report in reports:
            for label, stage_cost in report["cost"].items():
                total = cost.setdefault(label, dict.fromkeys(stage_cost, 0.0))
                for key, value in stage_cost.items():
                    total[key] += value
        cost["relative_to_reference"] = _relative_costs(cost, c.reference_label)
        methods = [label for label, _ in c.to_run()]
        return {
            "name": config.name,
            "seed": config.seed,
            "methods": [m for m in methods if m != c.reference_label],
            "method_options": {label: m.options() for label, m in c.methods.items()},
            "reference": c.reference_label,
            "forgotten": forgotten.as_dict(),
            "forgotten_clients": sorted(forgotten.clients),
            "requests": [d.as_dict() for d in shared.verification.decisions],
            "models": reports[-1]["models"] if reports else {},
            "stages": reports,
            "errors": {k: v.split("\n")[0] for k, v in errors.items()},
            "cost": cost,
            "history": {
                "storage": config.history.storage,
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
