"""Seeded client sampling: the one rule every FedAvg round of a run follows.

The training strategy, every method that runs FedAvg rounds, and a DP client planning
its privacy budget (``privacy.target_epsilon``) all call :func:`sample_clients`, so
the client knows exactly how many rounds it will train in.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np


def sample_size(population: int, fraction: float, minimum: int) -> int:
    """How many of ``population`` clients a round samples: ``max(minimum, int(fraction *
    population))``, at most all of them (FedAvg's rule)."""
    return min(population, max(minimum, int(fraction * population)))


def sample_clients(
    population: Collection[int],
    fraction: float,
    minimum: int,
    seed: int,
    server_round: int,
    stream: int = 0,
) -> list[int]:
    """Seeded sample of ``max(minimum, int(fraction * N))`` clients (FedAvg's rule).

    The draw depends only on (seed, round, stream) and the population, never on who
    is excluded afterwards.
    """
    ids = sorted(population)
    size = sample_size(len(ids), fraction, minimum)
    if size == len(ids):
        return ids
    rng = np.random.default_rng([seed, server_round, stream])
    return sorted(int(c) for c in rng.choice(ids, size=size, replace=False))


def participations(
    client: int,
    num_clients: int,
    fraction: float,
    minimum: int,
    seed: int,
    rounds: int,
) -> int:
    """How many of training rounds ``1..rounds`` sample ``client``."""
    population = range(num_clients)
    return sum(
        client in sample_clients(population, fraction, minimum, seed, r)
        for r in range(1, rounds + 1)
    )


@dataclass(frozen=True)
class SamplingPlan:
    """How the trainer samples clients, shared by training and every method that
    runs federated rounds, so their rounds are comparable."""

    fraction_train: float = 1.0
    min_train_clients: int = 1
    fraction_evaluate: float = 0.0
    min_reply_fraction: float = 1.0
    timeout: float = 600.0
