"""Phase 7b, the one-run DP audit (``privacy.audit_canaries > 0``): score the audit
canaries on the trained model and on every method's, bound epsilon from below and set
the bound next to the accounted one (:mod:`fedunlearn.evaluation.privacy_audit`)."""

from __future__ import annotations

import traceback

from fedunlearn.evaluation.privacy_audit import run_dp_audit, write_dp_audit
from fedunlearn.learning.arrays import Arrays
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.run.context import ExperimentScope
from fedunlearn.run.failures import is_fatal


class AuditPrivacy:
    """Run the one-run DP audit after the privacy accounting."""

    name = "dp_audit"

    def __init__(self, scope: ExperimentScope) -> None:
        self.ctx, self.config = scope.ctx, scope.config
        self.components, self.failures = scope.components, scope.failures
        self.federation = scope.federation

    def training_epsilon(self, metrics: RunMetrics) -> float | None:
        """The epsilon training's bound faces: the audit client's own (local DP, from
        ``privacy.accounts``) or the central one."""
        privacy, client = metrics.privacy, self.ctx.world.audit_client
        if privacy is None:
            return None
        if privacy.mode == "local":
            spent = privacy.details.get("per_client", {}).get(str(client), {})
            return spent.get("train")
        return privacy.training_epsilon

    def run(self, models: dict[str, Arrays], metrics: RunMetrics) -> None:
        """Audit ``models`` (``original`` among them) into ``metrics`` and
        ``dp_audit.npz``; a failure is kept as this step's and the run is partial."""
        p = self.config.privacy
        if not p.audit_canaries or self.ctx.world.audit_canaries is None:
            return
        self.ctx.progress.note(f"one-run DP audit: {p.audit_canaries} canaries")
        certified = {
            label: method.certified_privacy() for label, method in self.components.to_run()
        }
        try:
            report = run_dp_audit(
                self.ctx.world,
                models,
                self.ctx.new_model,
                training_epsilon=self.training_epsilon(metrics),
                certified=certified,
                forgotten_clients=self.federation.forgotten.clients,
                delta=p.delta,
                beta=p.audit_beta,
            )
            write_dp_audit(report, self.failures.run_dir)
        except Exception as err:
            if is_fatal(err):
                raise
            summary = f"{type(err).__name__}: {err}"
            self.ctx.progress.note(f"DP audit failed: {summary}", style="red")
            metrics.dp_audit = {"failed": summary}
            self.failures.step_failed("DP audit", "dp_audit", summary, traceback.format_exc())
            return
        metrics.dp_audit = report.to_json()
        # The sweep's table (results.csv) reads per-method columns.
        for label in models:
            if label != "original":
                release = report.unlearning.get(label, {})
                metrics.add_columns(
                    label,
                    {
                        "training_audited_epsilon": report.training["epsilon_lower"],
                        "audited_epsilon": release.get("epsilon_lower", float("nan")),
                    },
                )
