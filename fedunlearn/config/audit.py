"""``[audit]``: reference federations for calibrated attacks (:class:`AuditConfig`; the
config of each one: :func:`fedunlearn.federation.references.reference_config`).

A reference federation is the run itself with other training randomness: the same
data world (split, partition, canaries: ``data.seed`` pinned to the run's world seed),
a seed of its own, and, online, its own random half of the memorization canaries
planted (``canary.inclusion_seed``), so every candidate is IN some references and OUT
of the others. It trains on the same clients, retrains without the forgotten clients
and runs the run's methods; docs/calibrated.md says what the leakage audit does with
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.config.options import option
from fedunlearn.config.threats import AttackConfig, ReleaseConfig

__all__ = ["AuditConfig"]


@dataclass(frozen=True)
class AuditConfig:
    """``[audit]``: reference federations and the calibrated attacks they feed.

    Each reference federation costs a full training, a retraining and every method: a
    run with ``references = K`` trains about ``K + 1`` times what it trains without.
    The calibrated attacks run in the leakage audit, so they need ``[attack] enabled``.
    """

    references: int = option(
        0,
        "reference federations trained for calibrated attacks (LiRA, RMIA, U-LiRA, "
        "forgetting against a retrain ensemble); 0: none. Each costs a full run",
        ge=0,
    )
    online: bool = option(
        True,
        "plant each memorization canary (and twin) in about half of the references, so "
        "online LiRA/RMIA have IN and OUT references per candidate; false: every "
        "reference plants the run's canaries (offline attacks only)",
    )
    global_variance: bool = option(
        True,
        "LiRA and U-LiRA share one pooled standard deviation over records (the remedy "
        "for few references); false: one per record (needs >= 2 scores per hypothesis)",
    )
    rmia_a: float = option(
        0.3, "offline RMIA's approximation parameter a (Pr(x) from OUT references)", ge=0, le=1
    )
    coverage: float = option(
        0.95,
        "forgetting score: the retrain ensemble's central interval a method's output must fall in",
        gt=0,
        le=1,
    )

    def problems(self, attack: AttackConfig, release: ReleaseConfig) -> list[str]:
        """What is wrong with references under this ``[attack]`` and ``[release]``
        (empty when nothing is): they feed the observer's leakage audit, which reads
        probabilities."""
        if self.references == 0:
            return []
        if not attack.enabled:
            return [
                "audit.references > 0 trains reference federations for the leakage audit: "
                "set attack.enabled = true (or audit.references = 0)"
            ]
        if attack.attacker != "observer":
            return [
                "audit.references > 0: the calibrated attacks are the observer's; set "
                "attack.attacker = 'observer'"
            ]
        if attack.access == "label" or release.mode == "label":
            return [
                "audit.references > 0: calibrated attacks read probabilities; a label-only "
                "release (attack.access or release.mode = 'label') has none"
            ]
        return []
