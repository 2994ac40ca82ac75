"""The privacy a run spent: every client's epsilon (local DP), or the server's (central),
after training and with each unlearning method."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flwr.serverapp import Grid

from fedunlearn.defenses.central_dp import central_epsilon_of_rounds, effective_noise
from fedunlearn.federation.registry import ClientRegistry, ask_every_client

PRIVACY = "query.privacy"
"""Ask a client what epsilon it has spent, per phase."""


def gather_epsilon(
    grid: Grid, registry: ClientRegistry, timeout: float
) -> dict[int, dict[str, float]]:
    """Epsilon every client reports, by client and phase (``train``, ``calibrate``...)."""
    out: dict[int, dict[str, float]] = {}
    replies = ask_every_client(grid, registry, PRIVACY, timeout=timeout, what="privacy report")
    for reply in replies:
        client = registry.client_of(reply.metadata.src_node_id)
        metrics = reply.content["metrics"]
        out[client] = {
            k.split("/", 1)[1]: float(v) for k, v in metrics.items() if k.startswith("epsilon/")
        }
    return out


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


def local_spent(per_client: dict[int, dict[str, float]], methods: Sequence[MethodPrivacy]) -> Spent:
    """Local DP: the largest epsilon any client spent, after training and with each
    method's phase; infinite for a method whose client work is not DP-SGD (PGA)."""
    epsilon = {
        m.label: method_epsilon(per_client, m.phase) if m.private_client_work else math.inf
        for m in methods
    }
    details = {"per_client": {str(c): v for c, v in sorted(per_client.items())}}
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
