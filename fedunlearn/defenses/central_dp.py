"""Central differential privacy: Flower's server-side clipping wrapper around the trainer.

``[privacy] mode = "central"`` wraps the training strategy in Flower's
``DifferentialPrivacyServerSideFixedClipping``: the server clips every client update to
``clipping_norm`` and adds Gaussian noise to the aggregate. Its user-level epsilon is
computed with Opacus's RDP accountant, one Gaussian mechanism per round, at the noise
each round really has (:func:`effective_noise`), without amplification by sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping
from flwr.supercore.differential_privacy import compute_stdv

from fedunlearn.defenses.privacy import epsilon_of
from fedunlearn.seeding import derive_seed


def effective_noise(
    noise_multiplier: float, sampled: int, counts: Sequence[int], averaged: int
) -> float:
    """The noise multiplier a central-DP round really has, relative to one client.

    Flower's wrapper adds Gaussian noise of std ``noise_multiplier * C / sampled`` to
    the aggregate, calibrated to an unweighted mean of ``sampled`` clipped updates. A
    FedAvg weighted by example counts over ``averaged`` clients moves by at most
    ``w_max * C`` when one client changes, with ``w_max = n_max / (n_max + (averaged -
    1) n_min)`` over the clients' example ``counts``; the multiplier is then
    ``noise_multiplier / (sampled * w_max)``: the configured one for equal counts and
    ``averaged == sampled``, less when some are left out or weights differ.
    """
    if averaged <= 0:
        raise ValueError("no client is averaged")
    n_max, n_min = max(counts), min(counts)
    w_max = n_max / (n_max + (averaged - 1) * n_min)
    return noise_multiplier / (sampled * w_max)


def central_epsilon_of_rounds(rounds: Sequence[tuple[float, int]], delta: float) -> float:
    """Epsilon of central-DP rounds ``(noise multiplier, count)`` composed, without
    amplification by sampling."""
    if any(sigma <= 0 for sigma, n in rounds if n > 0):
        return math.inf
    return epsilon_of([(sigma, 1.0, n) for sigma, n in rounds if n > 0], delta)


class CentralDP(DifferentialPrivacyServerSideFixedClipping):
    """Flower's central-DP wrapper (server-side fixed clipping) around a training
    strategy; reading an attribute it lacks (``cost``, ``history``) reads the wrapped
    strategy's."""

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("strategy")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        self._noise_round = server_round
        return super().aggregate_train(server_round, replies)

    def _add_noise_to_aggregated_arrays(self, aggregated_arrays: ArrayRecord) -> ArrayRecord:
        """Flower's noise, from a generator seeded by (seed, phase, round): the same seed
        gives the same figures (Flower draws from NumPy's global generator)."""
        arrays = aggregated_arrays.to_numpy_ndarrays()
        std = compute_stdv(self.noise_multiplier, self.clipping_norm, self.num_sampled_clients)
        inner = self.strategy
        training_round = inner.training_round(getattr(self, "_noise_round", 0))
        seed = derive_seed(getattr(inner, "seed", 0), getattr(inner, "phase", ""), training_round)
        rng = np.random.default_rng(seed % 2**63)
        noised = [a + rng.normal(0.0, std, a.shape).astype(a.dtype) for a in arrays]
        return ArrayRecord(
            {k: Array(np.asarray(v)) for k, v in zip(aggregated_arrays.keys(), noised, strict=True)}
        )


def central_dp_trainer(
    base: Callable[..., Any], noise_multiplier: float, clipping_norm: float, sampled: int
) -> Callable[..., Any]:
    """A trainer factory that wraps every strategy ``base`` builds in :class:`CentralDP`."""

    def build(**kwargs: Any) -> CentralDP:
        return CentralDP(base(**kwargs), noise_multiplier, clipping_norm, sampled)

    return build
