"""FedRecovery: remove weighted gradient residuals, then add Gaussian noise.

Zhang, Wang, Chen, Cao, Li and Chen, "FedRecovery: Differentially Private Machine
Unlearning for Federated Learning Frameworks", IEEE TIFS 2023.

For every kept round ``t`` the forgotten client ``f`` took part in, the server has the
round's global update ``dF_t = sum_k p_k U_k`` and can compute what it would have been
without ``f``, ``dF_t^-f = (dF_t - p_f U_f) / (1 - p_f)``. Their difference is ``f``'s
gradient residual ``r_t = dF_t - dF_t^-f``. The unlearned model is the trained model
minus the weighted sum of residuals, ``w_T - sum_t a_t r_t`` with
``a_t = ||dF_t||^2 / sum_{j <= t} ||dF_j||^2`` (later rounds, whose updates are small
next to the path so far, count less), plus Gaussian noise on every trainable
parameter so that the result is statistically hard to tell from a retrained model.

Noise: ``noise_std`` sets it directly. With ``epsilon > 0`` it follows the Gaussian
mechanism, ``sigma = sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon``, where
``sensitivity`` bounds the L2 distance between the unlearned and the retrained model;
the paper derives that bound under its assumptions; here you give it, or leave 0 to
use the norm of the removed correction as a stand-in (a heuristic, not a guarantee).

Needs from the history: every client's stored updates and example counts (kept
rounds only; keep every round, ``history.delta_t = 1``, for the method as published).
Cost: server arithmetic only. Whole clients only.
"""

from __future__ import annotations

import math
import time

import numpy as np

from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays, l2_norm, to_record, weighted_average
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome


def residual_correction(history: UpdateHistory, clients: set[int]) -> tuple[Arrays, list[dict]]:
    """``sum_t a_t r_t`` over kept rounds, and per-round diagnostics."""
    keys = history.parameter_keys
    correction: Arrays | None = None
    path = 0.0
    rounds: list[dict] = []
    for kept in history:
        members = list(kept.clients)
        full = weighted_average(
            [kept.updates[c] for c in members], [kept.num_examples[c] for c in members]
        )
        size = l2_norm(full, keys) ** 2
        path += size
        stay = [c for c in members if c not in clients]
        if len(stay) == len(members):
            continue  # nobody forgotten took part: no residual this round
        if stay:
            without = weighted_average(
                [kept.updates[c] for c in stay], [kept.num_examples[c] for c in stay]
            )
        else:
            without = {k: np.zeros_like(v) for k, v in full.items()}
        weight = size / path if path > 0 else 0.0
        term = {
            k: weight * (np.asarray(full[k], np.float64) - np.asarray(without[k], np.float64))
            for k in full
        }
        correction = term if correction is None else {k: correction[k] + term[k] for k in term}
        rounds.append({"round": kept.round, "weight": weight})
    if correction is None:
        correction = {
            k: np.zeros_like(v, dtype=np.float64) for k, v in history.initial_model.items()
        }
    return correction, rounds


class FedRecovery(UnlearningMethod):
    """Weighted residual removal plus Gaussian noise.

    Parameters
    ----------
    noise_std : float
        Standard deviation of the Gaussian noise added to every trainable parameter
        (used when ``epsilon`` is 0).
    epsilon : float
        When > 0, calibrate the noise to (epsilon, delta) with the Gaussian mechanism.
    delta : float
        The delta of that guarantee, in (0, 1).
    sensitivity : float
        L2 bound between the unlearned and retrained models for the calibration; 0
        uses the norm of the removed correction (a heuristic).
    """

    name = "fedrecovery"
    needs_weighted_mean = True
    trains_clients = False

    def __init__(
        self,
        noise_std: float = 0.002,
        epsilon: float = 0.0,
        delta: float = 1e-5,
        sensitivity: float = 0.0,
    ) -> None:
        for option, value in (
            ("noise_std", noise_std),
            ("epsilon", epsilon),
            ("sensitivity", sensitivity),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{option} must be a number >= 0, got {value!r}")
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
            raise ValueError(f"delta must be a number in (0, 1), got {delta!r}")
        self.noise_std = float(noise_std)
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.sensitivity = float(sensitivity)

    def certified_privacy(self) -> tuple[float, float] | None:
        """(epsilon, delta) of the Gaussian mechanism when ``epsilon`` calibrates the
        noise; None for a set ``noise_std``."""
        return (self.epsilon, self.delta) if self.epsilon > 0 else None

    def history_bytes(self, history: UpdateHistory) -> int:
        return history.bytes_of(global_models=False)

    def expected_rounds(self, job: UnlearningJob) -> int:
        return 1

    def sigma(self, correction_norm: float) -> float:
        """The noise standard deviation to use."""
        if self.epsilon <= 0:
            return self.noise_std
        bound = self.sensitivity or correction_norm
        return bound * math.sqrt(2 * math.log(1.25 / self.delta)) / self.epsilon

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        started = time.perf_counter()
        if job.evaluate_fn is not None:
            job.evaluate_fn(0, to_record(job.original))
        correction, rounds = residual_correction(job.history, set(job.new.clients))
        keys = job.history.parameter_keys or list(job.original)
        sigma = self.sigma(l2_norm(correction, keys))
        rng = np.random.default_rng(derive_seed(job.seed, "fedrecovery-noise") % 2**63)
        result: Arrays = {}
        for k, v in job.original.items():
            value = np.asarray(v, dtype=np.float64) - correction[k]
            if k in keys and sigma > 0:
                value = value + rng.normal(0.0, sigma, size=value.shape)
            result[k] = value.astype(np.asarray(v).dtype)
        if job.evaluate_fn is not None:
            job.evaluate_fn(1, to_record(result))
        outcome = UnlearningOutcome(
            arrays=result,
            details={"sigma": sigma, "correction_l2": l2_norm(correction, keys), "rounds": rounds},
        )
        outcome.cost.wall_seconds = time.perf_counter() - started
        return outcome
