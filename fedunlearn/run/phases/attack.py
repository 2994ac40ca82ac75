"""Phase 6, release and attack: the models are released as ``[release]`` says (defence
stage S3) and the attacker of ``[attack]`` (an outside observer, or an
inference-attacker client) attacks them; the harness scores the attacks with the truth
only it holds (:mod:`fedunlearn.evaluation.leakage`)."""

from __future__ import annotations

import traceback

from fedunlearn.evaluation.candidates import LeakageUnavailableError
from fedunlearn.evaluation.leakage import LeakageReport, run_leakage_audit, write_leakage
from fedunlearn.learning.arrays import Arrays
from fedunlearn.reporting.figures import plot_attack_roc
from fedunlearn.reporting.folder import write_text
from fedunlearn.reporting.schema import Leakage, RunMetrics
from fedunlearn.reporting.tables import attack_markdown
from fedunlearn.run.context import ExperimentScope
from fedunlearn.run.failures import is_fatal
from fedunlearn.run.references import calibrated_attacks


class ReleaseAndAttack:
    """Run the leakage audit on every released model, when ``[attack]`` enables it."""

    name = "attack"

    def __init__(self, scope: ExperimentScope) -> None:
        self.scope = scope
        self.ctx, self.federation = scope.ctx, scope.federation
        self.config, self.failures = scope.config, scope.failures

    def run(self, models: dict[str, Arrays], reference: str, metrics: RunMetrics) -> None:
        """Attack ``models`` (``original`` among them); put the results, or why there are
        none, into ``metrics`` and the run folder."""
        config = self.config
        if not config.attack.enabled or len(models) <= 1:
            return
        self.ctx.progress.note(
            f"leakage audit: {config.attack.attacker} attacks {len(models)} models"
        )
        try:
            leakage = run_leakage_audit(
                config,
                self.ctx.world,
                models,
                self.federation.forgotten,
                self.ctx.new_model,
                self.ctx.grid,
                self.federation.registry,
            )
        except LeakageUnavailableError as err:
            # The other results stand; say why there is no leakage figure.
            self.ctx.progress.note(f"leakage audit skipped: {err}")
            metrics.attacks = Leakage(skipped=str(err))
            return
        except Exception as err:
            if is_fatal(err):
                raise
            # A broken attack must not cost the audit's results.
            summary = f"{type(err).__name__}: {err}"
            self.ctx.progress.note(f"leakage audit failed: {summary}", style="red")
            metrics.attacks = Leakage(failed=summary)
            self.failures.step_failed("leakage audit", "leakage", summary, traceback.format_exc())
            return
        if config.audit.references > 0:
            self.calibrate(leakage, reference)
        metrics.attacks = Leakage(leakage.metrics, leakage.setup)
        for label in models:
            if label != "original":
                metrics.add_columns(label, leakage.columns_for(label, reference))
        original = leakage.calibrated_columns("original")
        if original:
            metrics.add_columns("original", original)
        run_dir = self.failures.run_dir
        write_leakage(leakage, run_dir)
        write_text(run_dir / "attacks.md", attack_markdown(leakage.metrics))
        if config.output.figures:
            plot_attack_roc(leakage.roc, leakage.metrics, run_dir / "attacks_roc.png")

    def calibrate(self, leakage: LeakageReport, reference: str) -> None:
        """Train the reference federations and add the calibrated attacks to
        ``leakage``; their failing leaves the other attacks standing (run partial)."""
        try:
            scores, setup = calibrated_attacks(
                self.scope, leakage, reference, self.failures.run_dir
            )
        except Exception as err:
            if is_fatal(err):
                raise
            summary = f"{type(err).__name__}: {err}"
            self.ctx.progress.note(f"calibrated attacks failed: {summary}", style="red")
            self.failures.step_failed(
                "calibrated attacks", "calibrated", summary, traceback.format_exc()
            )
            leakage.setup["calibrated_failed"] = summary
            return
        leakage.metrics.update(scores.metrics)
        leakage.roc.update(scores.roc)
        leakage.arrays.update(scores.arrays)
        leakage.setup.update(setup)
        if scores.skipped:
            leakage.setup["calibrated_skipped"] = scores.skipped
