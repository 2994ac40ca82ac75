"""The sections of the threat model: attacks on the released models (``[attack]``),
differential privacy of training (``[privacy]``), the server's checks on requests and
unlearned models (``[defense]``) and what is released (``[release]``)."""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.config.options import option

__all__ = ["AttackConfig", "DefenseConfig", "PrivacyConfig", "ReleaseConfig"]


@dataclass(frozen=True)
class AttackConfig:
    """``[attack]``: inference attacks on the released models (phase 6).

    The attacker is an outside ``observer`` (query access to the released models, its
    own data drawn from the held-out split) or a ``client`` (the client ``client``,
    whose role must be an inference attacker; it uses its own partition and the weights
    it is sent). Every attack runs on every method's model and on the reference.
    """

    enabled: bool = option(False, "run the leakage audit")
    attacker: str = option("observer", "who attacks", choices=("observer", "client"))
    client: int = option(-1, "the attacking client's id when attacker = 'client'", ge=-1)
    access: str = option(
        "full", "what the observer may query: probabilities or labels", choices=("full", "label")
    )
    candidates: int = option(
        200, "positive candidates at most (members; deleted records) of each attack", ge=10
    )
    negatives: int = option(
        0,
        "negative candidates (non-members; retained records) of each attack; 0: as many "
        "as positives. TPR at an FPR is reported only where 1 / negatives <= FPR: ask "
        ">= 1000 for TPR at 0.1% (an error says when the pool holds fewer)",
        ge=0,
    )
    bootstrap: int = option(
        1000, "bootstrap resamples of the 95% confidence intervals (0: none)", ge=0
    )
    shadow_models: int = option(4, "shadow (original, unlearned) pairs of the gap attack", ge=1)
    shadow_epochs: float = option(10.0, "training epochs of each shadow model", gt=0)
    features: str = option(
        "sorted_difference",
        "gap-attack features",
        choices=("difference", "sorted_difference", "l2", "concatenation"),
    )
    classifier: str = option("logistic", "gap-attack model", choices=("logistic", "forest"))
    aux_fraction: float = option(
        0.5, "share of the held-out split the observer holds as its own data", gt=0, lt=1
    )
    client_samples: int = option(
        20, "records the attacker holds of each candidate client (deletion inference)", ge=1
    )

    def problems(self) -> list[str]:
        """What is wrong with these keys together (empty when nothing is)."""
        problems = []
        if 0 < self.negatives < 10:
            problems.append(
                f"attack.negatives must be 0 (as many as positives) or at least 10, got "
                f"{self.negatives}"
            )
        if 0 < self.bootstrap < 100:
            problems.append(
                f"attack.bootstrap must be 0 (no intervals) or at least 100 resamples for a "
                f"95% interval, got {self.bootstrap}"
            )
        return problems


@dataclass(frozen=True)
class PrivacyConfig:
    """``[privacy]``: differential privacy of training (see :mod:`fedunlearn.defenses.privacy`).

    ``local``: every client trains with Opacus DP-SGD (clip per-sample gradients to
    ``max_grad_norm``, add noise ``noise_multiplier``, or, with ``target_epsilon``, the
    noise each client plans once so that its training spends the target, within 0.1%
    under it). ``central``: Flower's server-side fixed-clipping wrapper
    clips client updates to ``clipping_norm`` and noises the aggregate.
    """

    mode: str = option("none", "where DP noise is added", choices=("none", "local", "central"))
    noise_multiplier: float = option(1.0, "Gaussian noise / clipping norm", ge=0)
    target_epsilon: float = option(
        0.0,
        "local: each client plans its noise so training spends this epsilon, within 0.1% "
        "under (0: use noise_multiplier)",
        ge=0,
    )
    delta: float = option(1e-5, "the delta of the (epsilon, delta) guarantee", gt=0, lt=1)
    max_grad_norm: float = option(1.0, "local: per-sample gradient clipping norm", gt=0)
    clipping_norm: float = option(1.0, "central: client update clipping norm", gt=0)
    audit_canaries: int = option(
        0,
        "one-run DP audit: m fresh noise canaries, each put with probability 1/2 into the "
        "data of the first of unlearning.requesters, then scored on the trained model "
        "(and before/after unlearning); 0: no audit",
        ge=0,
    )
    audit_beta: float = option(
        0.05, "one-run DP audit: the bound holds with confidence 1 - audit_beta", gt=0, lt=1
    )

    def problems(self) -> list[str]:
        """What is wrong with these keys together (empty when nothing is)."""
        if self.audit_canaries and self.mode == "none":
            return [
                f"privacy.audit_canaries = {self.audit_canaries} audits differential privacy: "
                "it needs privacy.mode = 'local' or 'central' (or audit_canaries = 0)"
            ]
        return []

    def unused(self) -> dict[str, str]:
        """The keys this mode does not read, each with the reason (``config.toml`` says
        so beside them, so a default is never taken for a setting in use)."""
        if self.mode == "none":
            keys = ("noise_multiplier", "target_epsilon", "delta", "max_grad_norm")
            return dict.fromkeys((*keys, "clipping_norm", "audit_beta"), "mode = 'none'")
        audit = {} if self.audit_canaries else {"audit_beta": "audit_canaries = 0"}
        if self.mode == "central":
            why = "mode = 'central'"
            return {"target_epsilon": why, "max_grad_norm": why, **audit}
        out = {"clipping_norm": "mode = 'local'", **audit}
        if self.target_epsilon:
            out["noise_multiplier"] = (
                "each client plans its noise from target_epsilon (metrics.json: privacy.accounts)"
            )
        else:
            out["target_epsilon"] = "noise_multiplier is used"
        return out


@dataclass(frozen=True)
class DefenseConfig:
    """``[defense]``: checks and limits the server applies (S1 before unlearning)."""

    verify_owner: bool = option(
        True, "refuse a request to remove any client's data but the requester's own"
    )
    verify_commitment: bool = option(
        True,
        "refuse records their owner (the client named in the request) did not commit to "
        "(salted hashes) when it joined",
    )
    max_requests: int = option(5, "requests accepted per client over a run (0: no limit)", ge=0)
    monitor: bool = option(
        False, "check every unlearned model on server-held data before accepting it (S2)"
    )
    max_accuracy_drop: float = option(
        0.05, "monitor: reject when validation accuracy falls by more than this", ge=0, le=1
    )
    max_trigger_rise: float = option(
        0.2, "monitor: reject when the trigger scan's backdoor score rises by more", ge=0, le=1
    )
    on_anomaly: str = option(
        "reject",
        "monitor: 'reject' keeps the previous model, leaves that request unserved and "
        "serves later ones; 'halt' also stops serving requests with that method",
        choices=("reject", "halt"),
    )
    validation_size: int = option(400, "monitor: held-out records the server validates on", ge=10)


@dataclass(frozen=True)
class ReleaseConfig:
    """``[release]``: what the world gets of an unlearned model (defence stage S3).

    Output modes: ``full`` probabilities, ``top_k`` (the ``k`` largest, the rest 0),
    ``label`` (the predicted class only), ``rounded`` (to ``decimals``), ``temperature``
    (softmax at ``temperature``). ``param_noise`` adds Gaussian noise of that standard
    deviation to the released weights. The leakage audit attacks what is released.
    """

    mode: str = option(
        "full", "released outputs", choices=("full", "top_k", "label", "rounded", "temperature")
    )
    k: int = option(3, "top_k: classes released", ge=1)
    decimals: int = option(1, "rounded: decimals kept", ge=0)
    temperature: float = option(4.0, "temperature: softmax temperature", gt=0)
    param_noise: float = option(0.0, "std of Gaussian noise on released weights", ge=0)
