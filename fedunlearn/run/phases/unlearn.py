"""Phase 5, unlearn: every method and the reference, stage by stage, each checked by the
impact monitor (defence stage S2) before its model is accepted.

All accepted requests are served in one stage, or one stage each
(``unlearning.sequential``), each stage from the model the previous one left. A
method that fails, or cannot serve record-level requests, is isolated (see
:mod:`fedunlearn.run.failures`); the reference failing stops the run.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any

from fedunlearn.config.identity import method_key
from fedunlearn.federation.aggregation import DivergedError, non_finite
from fedunlearn.federation.cost import Cost
from fedunlearn.learning.arrays import Arrays
from fedunlearn.run.context import ExperimentScope
from fedunlearn.run.failures import is_fatal
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    run_method,
)
from fedunlearn.unlearning.requests import ForgetSet


@dataclass
class StageModels:
    """The models after one stage: ``original`` and every method still standing."""

    index: int
    forget: ForgetSet
    forgotten_so_far: ForgetSet
    models: dict[str, Arrays]
    cost: dict[str, Cost]


@dataclass
class Unlearned:
    """What the unlearn phase produced, for the audit, the attacks and the report."""

    stages: list[StageModels] = field(default_factory=list)
    final: dict[str, Arrays] = field(default_factory=dict)
    """The final model of every method still standing, with ``original``."""
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    monitor: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    """Method keys of every method run (to pick their rows of the round log)."""


class Unlearn:
    """Run every method of one experiment over the stages of the shared federation."""

    name = "unlearn"

    def __init__(self, scope: ExperimentScope) -> None:
        self.ctx, self.federation = scope.ctx, scope.federation
        self.components, self.failures = scope.components, scope.failures

    def run(self) -> Unlearned:
        ctx, fed, failures = self.ctx, self.federation, self.failures
        runs = self.components.to_run()
        reference = self.components.reference_label
        for label, reason in self.components.skipped.items():
            failures.skip(label, reason)
        out = Unlearned(keys={method_key(m) for _, m in runs})
        current = {label: fed.original for label, _ in runs}
        halted: set[str] = set()
        forgotten = ForgetSet()  # everything requested so far: what the audit checks
        # What each method has really served: a request the monitor rejected is not
        # carried out later as part of the running total.
        served = {label: ForgetSet() for label, _ in runs}
        for index, stage in enumerate(fed.stages, start=1):
            forgotten = forgotten | stage
            suffix = f" [stage {index}]" if len(fed.stages) > 1 else ""
            ctx.progress.note(f"unlearning{suffix}: {stage.describe()}")
            costs: dict[str, Cost] = {}
            for label, method in runs:
                if label in failures or label in halted:
                    continue
                is_reference = label == reference
                target = served[label] | stage
                if target.record_level and not type(method).supports_records:
                    failures.skip(
                        label, f"{label} forgets whole clients only; a request named records"
                    )
                    continue
                phase = ("retraining" if is_reference else f"unlearning ({label})") + suffix
                outcome = self.outcome(index, target, stage, method, current[label], phase)
                if isinstance(outcome, str):
                    if is_reference:
                        raise RuntimeError(f"the reference {label} failed: {outcome}")
                    failures.method_failed(label, outcome)
                    continue
                costs[label] = outcome.cost
                out.details.setdefault(label, []).append(outcome.details)
                accepted = self.accepted(label, index, suffix, current[label], outcome, out)
                if not accepted and not is_reference:
                    if ctx.config.defense.on_anomaly == "halt":
                        halted.add(label)
                    continue
                current[label] = outcome.arrays
                served[label] = target
            standing = {k: v for k, v in current.items() if k not in failures}
            out.stages.append(
                StageModels(index, stage, forgotten, {"original": fed.original, **standing}, costs)
            )
        out.final = {"original": fed.original}
        if fed.stages:
            out.final.update({k: v for k, v in current.items() if k not in failures})
        return out

    def accepted(
        self,
        label: str,
        index: int,
        suffix: str,
        before: Arrays,
        outcome: UnlearningOutcome,
        out: Unlearned,
    ) -> bool:
        """The impact monitor's decision on a model (always yes without a monitor).

        The reference stays the yardstick of the audit: its decision is recorded, its
        model kept by the caller.
        """
        monitor = self.ctx.monitor
        if monitor is None:
            return True
        decision = monitor.check(before, outcome.arrays)
        out.monitor.setdefault(label, []).append({"stage": index, **decision.as_dict()})
        verdict = "accepted" if decision.accepted else "REJECTED"
        self.ctx.progress.note(f"monitor, {label}{suffix}: {verdict} ({decision.reason})")
        return decision.accepted

    def outcome(
        self,
        index: int,
        forgotten: ForgetSet,
        stage: ForgetSet,
        method: UnlearningMethod,
        start: Arrays,
        phase: str,
    ) -> UnlearningOutcome | str:
        """The method's outcome for this stage (a failure's text instead of raising);
        computed once per (stage, method key, forget set) for the whole group."""
        ctx, fed = self.ctx, self.federation
        key = method_key(method)
        cache = (index, key, json.dumps(forgotten.as_dict(), sort_keys=True))
        if cache in ctx.outcomes:
            return ctx.outcomes[cache]
        job = UnlearningJob(
            grid=ctx.grid,
            registry=fed.registry,
            history=fed.history,
            forget=forgotten,
            new=stage,
            original=start,
            instruction=ctx.instruction,
            rounds=ctx.config.training.rounds,
            sampling=ctx.sampling,
            seed=ctx.config.seed,
            trainer=ctx.trainer,
            new_model=ctx.new_model,
            server_data=ctx.world.server_unlabelled,
            evaluate_fn=ctx.evaluator.for_phase(phase, key),
        )
        ctx.progress.start(phase, method.expected_rounds(job))
        result: UnlearningOutcome | str
        try:
            result = run_method(method, job)
            ctx.round_log.merge(phase, result.round_metrics, key)
            broken = non_finite(result.arrays)
            if broken:
                raise DivergedError(
                    f"{method.name or type(method).__name__} left non-finite weights "
                    f"(in {', '.join(broken[:3])})"
                )
        except Exception as err:
            if is_fatal(err):
                raise  # the federation itself is broken: no other method can run either
            result = f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}"
            ctx.progress.note(f"{phase} failed: {type(err).__name__}: {err}", style="red")
        ctx.outcomes[cache] = result
        return result
