"""One experiment from birth to audit, on any Flower ``Grid``.

:func:`run_experiment` runs the phases of DESIGN.md section 1 (:mod:`fedunlearn.run.
phases`) against a Flower ``Grid``: it does not know whether the clients are Ray actors,
calls in this process or SuperNodes on other machines. :func:`run_group` runs several
experiments that differ only after training (methods, attack, release) on one training.

Only the audit reads ground truth (test set, forgotten data, canary), from
:mod:`fedunlearn.data.world`.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flwr.serverapp import Grid

from fedunlearn.config import ConfigError, ExperimentConfig
from fedunlearn.config.identity import method_key, training_key
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays
from fedunlearn.reporting.folder import write_failure, write_status
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.run.components import Components, resolve_components
from fedunlearn.run.context import ExperimentScope, RunContext, TrainedFederation
from fedunlearn.run.failures import Failures
from fedunlearn.run.phases.attack import ReleaseAndAttack
from fedunlearn.run.phases.audit import Audit
from fedunlearn.run.phases.prepare import Prepare
from fedunlearn.run.phases.privacy_audit import AuditPrivacy
from fedunlearn.run.phases.report import Report
from fedunlearn.run.phases.requests import GatherRequests
from fedunlearn.run.phases.train import Train
from fedunlearn.run.phases.unlearn import Unlearn

__all__ = ["ExperimentResult", "resolve_run_dir", "run_experiment", "run_group"]


@dataclass
class ExperimentResult:
    """What a run produced (also written to ``run_dir``).

    ``metrics`` is what ``metrics.json`` holds; ``models`` the final weights by label
    (``original``, each method, the reference); ``rounds`` the rows of ``rounds.csv``.
    """

    config: ExperimentConfig
    run_dir: Path
    metrics: RunMetrics
    rounds: list[dict]
    models: dict[str, Arrays]
    history: UpdateHistory | None


def resolve_run_dir(config: ExperimentConfig) -> Path:
    """The results folder of this run (created, absolute); ConfigError naming the key
    when it cannot be created."""
    if config.output.run_dir:
        path, key = Path(config.output.run_dir), "output.run_dir"
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(config.output.dir) / f"{config.name}-seed{config.seed}-{stamp}"
        key = "output.dir"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            [f"{key}: cannot write the run folder {path}: {err.strerror or err}"]
        ) from err
    return path.resolve()


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
    """Run experiments that differ only in what follows training (methods and their
    options, attack, release, output).

    They must share :func:`~fedunlearn.config.identity.training_key`: the federation
    trains once, gathers requests once, and a method asked for by several of them (the
    reference, typically) runs once. Each experiment still gets its own complete
    results folder.
    """
    if len({training_key(c) for c in configs}) != 1:
        raise ValueError("run_group needs experiments that share data, training and requests")
    components = [resolve_components(c) for c in configs]
    dirs = run_dirs or [resolve_run_dir(c) for c in configs]
    for config, run_dir in zip(configs, dirs, strict=True):
        write_status(run_dir, "running", name=config.name, seed=config.seed)
        ACTIVE.add(run_dir)
        (run_dir / "config.toml").write_text(config.to_toml())
    prepare = Prepare(grid, configs[0], dirs[0], progress or PhaseProgress(enabled=False))
    ctx: RunContext | None = None
    try:
        ctx = prepare.context()
        federation = train_federation(ctx, prepare)
    except BaseException as err:
        rows = ctx.round_log.rows_for(set()) if ctx is not None else []
        for run_dir in dirs:
            _stopped(run_dir, rows, err)
        raise
    results = []
    for config, parts, run_dir in zip(configs, components, dirs, strict=True):
        try:
            results.append(finish(ctx, federation, config, parts, run_dir))
        except BaseException as err:
            # Keep the rounds of training and of every method that ran.
            _stopped(
                run_dir, ctx.round_log.rows_for({method_key(m) for _, m in parts.to_run()}), err
            )
            raise
        finally:
            ACTIVE.discard(run_dir)
    return results


ACTIVE: set[Path] = set()
"""Run folders of this process still running (marked interrupted if it is stopped)."""

INTERRUPTED = threading.Event()
"""Set when this process is asked to stop (SIGINT, SIGTERM): runs that fail from then
on were interrupted, not broken."""


def interrupt() -> None:
    """Mark every run of this process still running as interrupted (on SIGINT/SIGTERM)."""
    INTERRUPTED.set()
    for run_dir in list(ACTIVE):
        write_status(run_dir, "interrupted", error="the process was asked to stop")
        ACTIVE.discard(run_dir)


def _stopped(run_dir: Path, rows: list[dict], err: BaseException) -> None:
    """Keep what a run that stopped computed, and say whether it failed or was stopped."""
    interrupted = INTERRUPTED.is_set() or isinstance(err, KeyboardInterrupt | SystemExit)
    state = "interrupted" if interrupted else "failed"
    write_failure(run_dir, rows, f"{type(err).__name__}: {err}", traceback.format_exc(), state)
    ACTIVE.discard(run_dir)


def train_federation(ctx: RunContext, prepare: Prepare) -> TrainedFederation:
    """The phases a group shares: discover the clients, train, gather the requests."""
    registry = prepare.discover(ctx)
    training = Train(ctx).run(registry)
    requests = GatherRequests(ctx).run(registry)
    return TrainedFederation(
        registry,
        training.history,
        training.original,
        training.cost,
        requests.verification,
        requests.stages,
        training.missing,
    )


def finish(
    ctx: RunContext,
    federation: TrainedFederation,
    config: ExperimentConfig,
    components: Components,
    run_dir: Path,
) -> ExperimentResult:
    """The phases of one experiment of the group: unlearn, audit, attack, report."""
    scope = ExperimentScope(ctx, federation, config, components, Failures(run_dir))
    unlearned = Unlearn(scope).run()
    audit, report = Audit(scope), Report(scope)
    metrics = report.metrics(unlearned, audit.stages(unlearned))
    for label, reason in audit.collapsed(metrics.models).items():
        scope.failures.method_failed(label, reason)
    metrics.privacy = audit.privacy(metrics.stages)
    report.add_privacy(metrics, unlearned.final)
    AuditPrivacy(scope).run(unlearned.final, metrics)
    ReleaseAndAttack(scope).run(unlearned.final, components.reference_label, metrics)
    report.write(metrics, scope.failures, unlearned)
    return ExperimentResult(
        config,
        run_dir,
        metrics,
        ctx.round_log.rows_for(unlearned.keys),
        unlearned.final,
        federation.history,
    )
