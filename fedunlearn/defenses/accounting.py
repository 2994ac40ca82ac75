"""The privacy a run spent: every client's epsilon (local DP), or the server's (central),
after training and with each unlearning method.

Under local DP the server asks every client for its account (``query.privacy``): per
phase, the Opacus accountant history (noise multiplier, sample rate, steps) and the
epsilon the client computed from it. ``metrics.json`` keeps them whole under
``privacy.accounts`` (:meth:`PhaseAccount.to_json`), so anyone can recompute every
epsilon with Opacus's ``RDPAccountant`` (docs/defenses.md has the recipe).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flwr.serverapp import Grid

from fedunlearn.defenses.central_dp import central_epsilon_of_rounds, effective_noise
from fedunlearn.defenses.privacy import ACCOUNTANT, History, histories_of_metrics
from fedunlearn.federation.registry import ClientRegistry, ask_every_client

PRIVACY = "query.privacy"
"""Ask a client what epsilon it has spent, per phase, and its accountant histories."""


@dataclass(frozen=True)
class PhaseAccount:
    """One client's account of one phase.

    Attributes
    ----------
    history : list of (float, float, int)
        The phase's own Opacus accountant history: (noise multiplier, sample rate,
        steps) entries.
    composed_with : tuple of str
        Phases whose histories come before this one in its epsilon: ``("train",)`` for
        an unlearning phase (its model builds on the trained one), none for ``train``.
    epsilon : float
        What the client reported: the RDP epsilon of the composed histories.
    """

    history: History
    composed_with: tuple[str, ...]
    epsilon: float

    def to_json(self, delta: float) -> dict[str, Any]:
        """The ``privacy.accounts`` entry: accountant, delta, history, composition and
        epsilon."""
        return {
            "accountant": ACCOUNTANT,
            "delta": delta,
            "history": [
                {"noise_multiplier": sigma, "sample_rate": rate, "steps": steps}
                for sigma, rate, steps in self.history
            ],
            "composed_with": list(self.composed_with),
            "epsilon": self.epsilon,
        }


Accounts = dict[int, dict[str, PhaseAccount]]
"""Every client's accounts, by client id and phase."""


def gather_accounts(grid: Grid, registry: ClientRegistry, timeout: float) -> Accounts:
    """Every client's account of every phase it trained privately in."""
    out: Accounts = {}
    replies = ask_every_client(grid, registry, PRIVACY, timeout=timeout, what="privacy report")
    for reply in replies:
        client = registry.client_of(reply.metadata.src_node_id)
        metrics = reply.content["metrics"]
        histories = histories_of_metrics(metrics)
        out[client] = {
            phase: PhaseAccount(
                histories.get(phase, []),
                () if phase == "train" else ("train",),
                float(metrics[f"epsilon/{phase}"]),
            )
            for phase in (k.split("/", 1)[1] for k in metrics if k.startswith("epsilon/"))
        }
    return out


def epsilons(accounts: Mapping[int, Mapping[str, PhaseAccount]]) -> dict[int, dict[str, float]]:
    """The epsilon of each client and phase."""
    return {
        c: {phase: a.epsilon for phase, a in by_phase.items()} for c, by_phase in accounts.items()
    }


def method_epsilon(per_client: dict[int, dict[str, float]], phase: str | None) -> float:
    """The largest epsilon over clients of training plus ``phase`` (training alone for
    methods that do not train clients)."""
    values = [
        spent.get(phase, spent.get("train", 0.0)) if phase else spent.get("train", 0.0)
        for spent in per_client.values()
    ]
    return max(values, default=0.0)


@dataclass(frozen=True)
class MethodPrivacy:
    """What the accounting needs to know of one method run.

    ``phase`` is the training phase its client rounds run under (None when clients do
    not train); ``central_dp`` whether every client contribution it uses passes
    through the noised FedAvg rounds; ``private_client_work`` whether all its client
    computation is DP-SGD; ``rounds`` the federated rounds it ran over all stages.
    """

    label: str
    phase: str | None
    central_dp: bool
    private_client_work: bool
    rounds: int


Spent = tuple[float, dict[str, float], dict[str, Any]]
"""(epsilon after training, epsilon of each model, what the mode adds to the report)."""


def local_spent(
    accounts: Mapping[int, Mapping[str, PhaseAccount]],
    methods: Sequence[MethodPrivacy],
    delta: float,
    target_epsilon: float = 0.0,
) -> Spent:
    """Local DP: the largest epsilon any client spent, after training and with each
    method's phase; infinite for a method whose client work is not DP-SGD (PGA).

    The details hold every client's epsilon by phase (``per_client``), its accounts
    (``accounts``, see :meth:`PhaseAccount.to_json`), the phase each method's client
    rounds run under (``method_phases``; None when clients do not train for it) and the
    ``target_epsilon`` the clients planned their noise for (None for a configured noise).
    """
    per_client = epsilons(accounts)
    epsilon = {
        m.label: method_epsilon(per_client, m.phase) if m.private_client_work else math.inf
        for m in methods
    }
    details = {
        "target_epsilon": target_epsilon or None,
        "per_client": {str(c): v for c, v in sorted(per_client.items())},
        "method_phases": {m.label: m.phase for m in methods},
        "accounts": {
            str(c): {phase: a.to_json(delta) for phase, a in sorted(by_phase.items())}
            for c, by_phase in sorted(accounts.items())
        },
    }
    return method_epsilon(per_client, None), epsilon, details


def central_spent(
    noise_multiplier: float,
    delta: float,
    sampled: int,
    counts: Sequence[int],
    kept: Sequence[int],
    forgotten: int,
    rounds: int,
    methods: Sequence[MethodPrivacy],
) -> Spent:
    """Central DP: user-level epsilon of the server's noised aggregates.

    No amplification by sampling: the seeded sample is no secret (as Flower's own
    accountant assumes), so each round counts in full. The noise each round really has
    depends on how many updates are averaged and their weights (:func:`effective_noise`):
    ``counts`` are every client's examples, ``kept`` those of the clients that stay.
    After unlearning a sampled forgotten client is left out of the average: at worst
    all ``forgotten`` of them were sampled. A method whose model rests on un-noised
    client work (stored updates, an ascent) gets an infinite epsilon.
    """
    train = (effective_noise(noise_multiplier, sampled, counts, sampled), rounds)
    after = effective_noise(noise_multiplier, sampled, kept, max(1, sampled - forgotten))
    epsilon = {
        m.label: central_epsilon_of_rounds([train, (after, m.rounds)], delta)
        if m.central_dp and m.private_client_work
        else math.inf
        for m in methods
    }
    details = {
        "noise_multiplier": noise_multiplier,
        "effective_noise": {"training": train[0], "after_unlearning": after},
        "assumes": (
            "user-level DP, one client's clipped update as the unit; the noise "
            "of each round is the configured one scaled to the largest weight a "
            "client can have in the example-weighted average"
        ),
    }
    return central_epsilon_of_rounds([train], delta), epsilon, details
