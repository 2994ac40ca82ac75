"""Seeded client sampling: the one rule every FedAvg round of a run follows.

The training strategy, every method that runs FedAvg rounds, and a DP client planning
its privacy budget (``privacy.target_epsilon``) all call :func:`sample_clients`, so
the client knows exactly how many rounds it will train in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

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


FEDAVG_ARGUMENTS = (
    "fraction_train",
    "fraction_evaluate",
    "min_train_nodes",
    "min_evaluate_nodes",
    "min_available_nodes",
    "weighted_by_key",
    "arrayrecord_key",
    "configrecord_key",
)
"""The arguments of Flower's ``FedAvg`` a plan sets."""


@dataclass(frozen=True)
class SamplingPlan:
    """How every phase's rounds sample and address clients, so training, retraining
    and every method's rounds are comparable.

    Attributes
    ----------
    fraction_train, min_train_clients, fraction_evaluate : float, int, float
        FedAvg's sampling: ``max(min, int(fraction * N))`` clients per round.
    min_reply_fraction : float, optional
        A round fails unless this share of sampled clients reply; None carries on with
        whoever replied (Flower's behaviour).
    timeout : float
        Seconds to wait for the replies of a round.
    min_evaluate_clients, min_available_clients : int, optional
        FedAvg's ``min_evaluate_nodes`` (default: 1 when clients evaluate) and
        ``min_available_nodes`` (default: every known client).
    weighted_by_key, arrayrecord_key, configrecord_key : str
        The record keys the app's clients use (FedAvg's defaults).
    train_config, evaluate_config : mapping
        The app's own config, sent in every round of every phase.
    strategy_kwargs : mapping
        Further arguments of the training strategy's class (e.g. FedProx's
        ``proximal_mu``), passed to every phase's strategy of that class.
    """

    fraction_train: float = 1.0
    min_train_clients: int = 1
    fraction_evaluate: float = 0.0
    min_reply_fraction: float | None = 1.0
    timeout: float = 600.0
    min_evaluate_clients: int | None = None
    min_available_clients: int | None = None
    weighted_by_key: str = "num-examples"
    arrayrecord_key: str = "arrays"
    configrecord_key: str = "config"
    train_config: Mapping[str, Any] = field(default_factory=dict)
    evaluate_config: Mapping[str, Any] = field(default_factory=dict)
    strategy_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def fedavg_kwargs(self, known_clients: int | None) -> dict[str, Any]:
        """The arguments of Flower's ``FedAvg`` for this plan (``known_clients``: how
        many clients the registry knows, or None when it learns them)."""
        evaluate = self.min_evaluate_clients
        if evaluate is None:
            evaluate = 1 if self.fraction_evaluate > 0 else 0
        available = self.min_available_clients
        if available is None:
            available = known_clients if known_clients is not None else self.min_train_clients
        return {
            "fraction_train": self.fraction_train,
            "fraction_evaluate": self.fraction_evaluate,
            "min_train_nodes": self.min_train_clients,
            "min_evaluate_nodes": evaluate,
            "min_available_nodes": available,
            "weighted_by_key": self.weighted_by_key,
            "arrayrecord_key": self.arrayrecord_key,
            "configrecord_key": self.configrecord_key,
        }
