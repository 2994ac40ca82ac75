"""Phase 7, audit: every model after every stage against the reference retrained on the
same seed, with the ground truth only the harness holds; and the privacy spent.

Figures per model (see :class:`~fedunlearn.evaluation.auditor.ModelAudit`): clean and
forgotten-data accuracy, canary (and poison) attack success, parameter L2 and output KL
to the reference.
"""

from __future__ import annotations

import numpy as np

from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.defenses.accounting import (
    MethodPrivacy,
    central_spent,
    gather_accounts,
    local_spent,
)
from fedunlearn.evaluation.auditor import AuditData, Auditor
from fedunlearn.federation.sampling import sample_size
from fedunlearn.learning.arrays import Arrays
from fedunlearn.reporting.schema import PrivacySpent, Stage
from fedunlearn.run.context import ExperimentScope
from fedunlearn.run.phases.unlearn import Unlearned
from fedunlearn.unlearning.requests import ForgetSet

COLLAPSE_MARGIN = 0.1
"""A model within this much of chance accuracy has learned nothing."""


class Audit:
    """Audit one experiment's models; account its privacy."""

    name = "audit"

    def __init__(self, scope: ExperimentScope) -> None:
        self.ctx, self.federation = scope.ctx, scope.federation
        self.config, self.components = scope.config, scope.components

    def stages(self, unlearned: Unlearned) -> list[Stage]:
        """The audit after every stage."""
        return [
            Stage(
                stage=s.index,
                forget=s.forget.as_dict(),
                forgotten_so_far=s.forgotten_so_far.as_dict(),
                models=self.models(s.forgotten_so_far, s.models),
                cost={label: cost.as_dict() for label, cost in s.cost.items()},
            )
            for s in unlearned.stages
        ]

    def models(self, forgotten: ForgetSet, models: dict[str, Arrays]) -> dict[str, dict]:
        """Audit ``models`` (the reference among them) once ``forgotten`` is forgotten."""
        world = self.ctx.world
        parts = [world.client(c) for c in sorted(forgotten.clients)]
        parts += [world.records(c, np.asarray(ids)) for c, ids in forgotten.records]
        forgotten_data = ArrayDataset(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.ids for p in parts]),
        )
        auditor = Auditor(
            self.ctx.new_model,
            AuditData(
                world.test,
                forgotten_data,
                world.triggered_test,
                self.config.canary.target_class,
                probes=self.probes(),
            ),
            models[self.components.reference_label],
            self.ctx.parameter_keys,
        )
        return {label: auditor.audit(arrays).as_dict() for label, arrays in models.items()}

    def probes(self) -> dict[str, tuple[ArrayDataset, int]]:
        """Triggered test inputs the clients' roles planted (camouflaged poisoning's)."""
        world, probes = self.ctx.world, {}
        for cls, options in self.components.roles.values():
            probes.update(cls.audit_probes(options, world.test, world.info, self.config))
        return probes

    def collapsed(self, models: dict[str, dict[str, float]]) -> dict[str, str]:
        """Methods whose model collapsed: clean accuracy near chance, or under half the
        reference's, while the original and the reference learned (their figures stay,
        flagged)."""
        reference = models.get(self.components.reference_label)
        original = models.get("original")
        if reference is None or original is None:
            return {}
        chance = 1.0 / self.ctx.world.info.num_classes
        learned = reference["clean_accuracy"]
        if not min(learned, original["clean_accuracy"]) > chance + COLLAPSE_MARGIN:
            return {}  # the federation itself learned little: nothing to collapse from
        floor = max(chance + COLLAPSE_MARGIN, 0.5 * learned)
        return {
            label: (
                f"collapsed: clean accuracy {figures['clean_accuracy']:.3f} against the "
                f"reference's {learned:.3f} (chance is {chance:.3f})"
            )
            for label, figures in models.items()
            if label not in ("original", self.components.reference_label)
            and not figures["clean_accuracy"] >= floor
        }

    def privacy(self, stages: list[Stage]) -> PrivacySpent | None:
        """Epsilon spent: per client (local DP) or by the server's releases (central);
        None without differential privacy."""
        p, fed = self.config.privacy, self.config.federation
        if p.mode == "none":
            return None
        methods = [
            MethodPrivacy(
                label,
                type(m).phase,
                type(m).central_dp,
                type(m).private_client_work,
                sum(int(s.cost.get(label, {}).get("rounds", 0)) for s in stages),
            )
            for label, m in self.components.to_run()
        ]
        registry = self.federation.registry
        if p.mode == "central":
            ids = registry.client_ids
            counts = [registry.num_examples(c) for c in ids]
            gone = self.federation.forgotten.clients
            kept = [n for c, n in zip(ids, counts, strict=True) if c not in gone] or counts
            spent = central_spent(
                p.noise_multiplier,
                p.delta,
                sample_size(fed.num_clients, fed.fraction_train, fed.min_train_clients),
                counts,
                kept,
                len(gone),
                self.config.training.rounds,
                methods,
            )
        else:
            accounts = gather_accounts(self.ctx.grid, registry, fed.timeout)
            spent = local_spent(accounts, methods, p.delta, p.target_epsilon)
        training, epsilon, details = spent
        return PrivacySpent(p.mode, p.delta, training, epsilon, details)
