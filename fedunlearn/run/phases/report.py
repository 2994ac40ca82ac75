"""Phase 8, report: the typed results of one experiment, and its results folder."""

from __future__ import annotations

import time
from typing import Any

from fedunlearn.reporting.folder import write_results
from fedunlearn.reporting.models import write_models
from fedunlearn.reporting.schema import Costs, Figures, HistorySize, RunMetrics, Stage
from fedunlearn.run.context import ExperimentScope
from fedunlearn.run.failures import Failures
from fedunlearn.run.phases.unlearn import Unlearned

RELATIVE_COSTS = ("client_epochs", "rounds", "wall_seconds")


def relative_costs(methods: dict[str, Figures], reference: str) -> dict[str, Figures]:
    """Each method's cost divided by the reference's (NaN where the reference's is 0)."""
    ref = methods.get(reference)
    if ref is None:
        return {}
    return {
        label: {k: (c[k] / ref[k] if ref[k] else float("nan")) for k in RELATIVE_COSTS}
        for label, c in methods.items()
    }


class Report:
    """Gather what the phases found into :class:`RunMetrics` and write the folder."""

    name = "report"

    def __init__(self, scope: ExperimentScope) -> None:
        self.ctx, self.federation = scope.ctx, scope.federation
        self.config, self.components = scope.config, scope.components

    def metrics(self, unlearned: Unlearned, stages: list[Stage]) -> RunMetrics:
        """The results of the unlearning and the audit (attacks and status come later)."""
        c, fed, config = self.components, self.federation, self.config
        history = fed.history
        methods: dict[str, Figures] = {}
        for stage in stages:
            for label, stage_cost in stage.cost.items():
                total = methods.setdefault(label, dict.fromkeys(stage_cost, 0.0))
                for key, value in stage_cost.items():
                    total[key] += value
        labels = [label for label, _ in c.to_run()]
        forgotten = fed.forgotten
        metrics = RunMetrics(
            name=config.name,
            seed=config.seed,
            methods=[m for m in labels if m != c.reference_label],
            method_options={label: m.options() for label, m in c.methods.items()},
            reference=c.reference_label,
            forgotten=forgotten.as_dict(),
            forgotten_clients=sorted(forgotten.clients),
            requests=[d.as_dict() for d in fed.verification.decisions],
            refused_nodes={str(n): why for n, why in fed.registry.refused.items()},
            missing=self.missing(unlearned),
            models=stages[-1].models if stages else {},
            stages=stages,
            cost=Costs(
                fed.training_cost.as_dict(),
                methods,
                relative_costs(methods, c.reference_label),
            ),
            history=HistorySize(
                storage=config.history.storage,
                delta_t=history.delta_t,
                kept_rounds=history.rounds,
                bytes=history.nbytes,
                disk_bytes=history.disk_bytes(),
                bytes_needed={label: m.history_bytes(history) for label, m in c.to_run()},
            ),
            details=unlearned.details,
        )
        if unlearned.monitor:
            metrics.monitor = unlearned.monitor
            for label, checks in unlearned.monitor.items():
                metrics.add_columns(
                    label,
                    {
                        "monitor_checks": len(checks),
                        "monitor_rejections": sum(not c["accepted"] for c in checks),
                    },
                )
        return metrics

    def missing(self, unlearned: Unlearned) -> dict[str, dict[str, list[int]]]:
        """Clients missing from rounds, by phase and round."""
        out: dict[str, dict[str, list[int]]] = {}
        if self.federation.missing:
            out["training"] = {str(r): c for r, c in sorted(self.federation.missing.items())}
        for label, stages in unlearned.details.items():
            for details in stages:
                for r, clients in details.get("missing_clients", {}).items():
                    out.setdefault(label, {})[r] = clients
        return out

    def add_privacy(self, metrics: RunMetrics, models: dict[str, Any]) -> None:
        """Epsilon columns of every model but the original."""
        if metrics.privacy is None:
            return
        for label in models:
            if label != "original":
                metrics.add_columns(
                    label,
                    {
                        "epsilon": metrics.privacy.epsilon.get(label, float("nan")),
                        "training_epsilon": metrics.privacy.training_epsilon,
                    },
                )

    def write(self, metrics: RunMetrics, failures: Failures, unlearned: Unlearned) -> None:
        """Status and errors, then the folder: models, metrics, rounds, tables, figures."""
        # Before metrics.json: a complete run always has its models (for re-audits).
        write_models(unlearned.final, failures.run_dir)
        metrics.errors = failures.summary()
        metrics.status = failures.status
        metrics.total_seconds = time.perf_counter() - self.ctx.started
        write_results(
            failures.run_dir,
            metrics,
            self.ctx.round_log.rows_for(unlearned.keys),
            figures=self.config.output.figures,
        )
