"""FedRecover: the server estimates the remaining clients' updates from the history.

Cao, Jia, Zhang and Gong, "FedRecover: Recovering from Poisoning Attacks in Federated
Learning using Historical Information", IEEE S&P 2023.

The server replays training from the initial model without the forgotten clients. In
round ``t`` the recovered model ``w'_t`` differs from the original ``w_t``, so each
remaining client's stored update ``U_t`` is out of date. Instead of asking the client,
the server estimates ``U'_t ~ U_t - B (w'_t - w_t)``, where ``B`` is an L-BFGS
approximation (per client, from its last ``buffer`` exact pairs; see
:mod:`fedunlearn.lbfgs`) of how the client's pseudo-gradient ``-U`` changes with the
model. Clients compute exact updates only in

* the first ``warmup`` rounds (to fill the buffers),
* every ``period``-th round after that (periodic correction, refreshing the buffers),
* the last ``final`` rounds (final tuning),
* any round where an estimate is abnormal: larger in some coordinate than
  ``abnormal_threshold`` times the stored update's largest coordinate (0: off).

Needs from the history: the global model and every client's update in *every* round
(``history.delta_t = 1``). Cost: client computation only in exact rounds, e.g. 8 of 20
rounds with the defaults. Whole clients only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import MetricRecord

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.federation.recording import ClientReply, RecordingFedAvg
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays, add, subtract, weighted_average
from fedunlearn.unlearning.lbfgs import curvature_ok, lbfgs_product
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    run_rounds,
)


def _flat(arrays: Arrays, keys: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(arrays[k], dtype=np.float64).ravel() for k in keys])


def _unflat(vector: np.ndarray, like: Arrays, keys: list[str]) -> Arrays:
    out = {k: np.array(v, copy=True) for k, v in like.items()}
    start = 0
    for k in keys:
        size = np.asarray(like[k]).size
        out[k] = (
            vector[start : start + size]
            .reshape(np.shape(like[k]))
            .astype(np.asarray(like[k]).dtype)
        )
        start += size
    return out


class RecoveryRounds(RecordingFedAvg):
    """The Flower strategy of FedRecover's recovery: one server round per training
    round, exact updates from clients only where the schedule (or an abnormal
    estimate) asks for them."""

    def __init__(
        self,
        *args: Any,
        source: UpdateHistory,
        exact_rounds: set[int],
        buffer: int,
        abnormal_threshold: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        self.exact_rounds = exact_rounds
        self.buffer = buffer
        self.abnormal_threshold = abnormal_threshold
        self.keys = list(source.parameter_keys or source.initial_model)
        self.pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.estimates: dict[int, Arrays] = {}
        self._shift = np.zeros(0)
        self.client_updates_computed = 0
        self.client_updates_estimated = 0
        self.abnormal_count = 0

    def _remaining(self, server_round: int) -> list[int]:
        return [c for c in self.source[server_round].clients if c not in self.exclude]

    def _estimate(self, client: int, stored: Arrays, shift: np.ndarray) -> Arrays | None:
        pairs = self.pairs.get(client)
        if not pairs:
            return None
        correction = lbfgs_product([p[0] for p in pairs], [p[1] for p in pairs], shift)
        # U' = U - B s (B approximates the Jacobian of the pseudo-gradient -U).
        return _unflat(_flat(stored, self.keys) - correction, stored, self.keys)

    def clients_for_round(self, server_round: int, arrays: Arrays) -> list[int]:
        """The clients that compute an exact update; the others' are estimated."""
        kept = self.source[server_round]
        shift = _flat(arrays, self.keys) - _flat(kept.global_model, self.keys)
        self.estimates = {}
        exact: list[int] = []
        for client in self._remaining(server_round):
            estimate = None
            if server_round not in self.exact_rounds:
                estimate = self._estimate(client, kept.updates[client], shift)
                if estimate is not None and self._abnormal(estimate, kept.updates[client]):
                    self.abnormal_count += 1
                    estimate = None
            if estimate is None:
                exact.append(client)
            else:
                self.estimates[client] = estimate
        self._shift = shift
        self.client_updates_computed += len(exact)
        self.client_updates_estimated += len(self.estimates)
        return exact

    def _abnormal(self, estimate: Arrays, stored: Arrays) -> bool:
        if self.abnormal_threshold <= 0:
            return False
        limit = self.abnormal_threshold * np.max(np.abs(_flat(stored, self.keys)))
        return bool(np.max(np.abs(_flat(estimate, self.keys))) > limit)

    def aggregate(
        self, server_round: int, start: Arrays, replies: list[ClientReply]
    ) -> tuple[Arrays, MetricRecord | None]:
        kept = self.source[server_round]
        updates: dict[int, Arrays] = dict(self.estimates)
        counts = {c: kept.num_examples[c] for c in updates}
        for reply in replies:
            exact = subtract(reply.weights, start)
            stored = kept.updates[reply.client_id]
            y = -(_flat(exact, self.keys) - _flat(stored, self.keys))
            if curvature_ok(self._shift, y):
                pairs = self.pairs.setdefault(reply.client_id, [])
                pairs.append((self._shift.copy(), y))
                del pairs[: -self.buffer]
            updates[reply.client_id] = exact
            counts[reply.client_id] = reply.num_examples
        metrics = self.summarise(replies)
        if not updates:
            return start, metrics
        clients = sorted(updates)
        weights = [counts[c] for c in clients]
        return add(start, weighted_average([updates[c] for c in clients], weights)), metrics


class FedRecover(UnlearningMethod):
    """Recovery with L-BFGS-estimated client updates.

    Parameters
    ----------
    warmup : int
        First rounds computed exactly by the clients (>= 1).
    period : int
        After the warm-up, every ``period``-th round is exact (>= 1).
    final : int
        Last rounds computed exactly (final tuning, >= 0).
    buffer : int
        L-BFGS pairs kept per client (>= 1).
    abnormal_threshold : float
        Ask for an exact update when an estimate's largest coordinate exceeds this many
        times the stored update's (0: never).
    """

    name = "fedrecover"
    phase = "recover"
    needs_weighted_mean = True

    def __init__(
        self,
        warmup: int = 2,
        period: int = 5,
        final: int = 2,
        buffer: int = 2,
        abnormal_threshold: float = 5.0,
    ) -> None:
        for option, value, low in (
            ("warmup", warmup, 1),
            ("period", period, 1),
            ("final", final, 0),
            ("buffer", buffer, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{option} must be an integer >= {low}, got {value!r}")
        if (
            isinstance(abnormal_threshold, bool)
            or not isinstance(abnormal_threshold, int | float)
            or abnormal_threshold < 0
        ):
            raise ValueError(
                f"abnormal_threshold must be a number >= 0, got {abnormal_threshold!r}"
            )
        self.warmup = warmup
        self.period = period
        self.final = final
        self.buffer = buffer
        self.abnormal_threshold = float(abnormal_threshold)

    def check(self, config: ExperimentConfig) -> list[str]:
        if config.history.delta_t != 1:
            return [
                "fedrecover needs every round in the history: set history.delta_t = 1 "
                f"(it is {config.history.delta_t})"
            ]
        return []

    def history_problems(self, history: UpdateHistory) -> list[str]:
        problems = super().history_problems(history)
        if history.delta_t != 1 or len(history.rounds) != history.num_rounds:
            problems.append(
                "fedrecover needs every training round in the history (delta_t = 1, "
                f"it is {history.delta_t})"
            )
        return problems

    def exact_rounds(self, rounds: int) -> set[int]:
        """Rounds the clients compute exactly under the schedule."""
        out = set(range(1, min(self.warmup, rounds) + 1))
        out |= {
            t for t in range(self.warmup + 1, rounds + 1) if (t - self.warmup) % self.period == 0
        }
        out |= set(range(max(1, rounds - self.final + 1), rounds + 1))
        return out

    def history_bytes(self, history: UpdateHistory) -> int:
        return history.nbytes

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        if job.history.delta_t != 1 or len(job.history.rounds) != job.rounds:
            raise ValueError("fedrecover needs every training round in the history (delta_t = 1)")
        strategy = job.make_trainer(
            phase=self.phase,
            strategy_class=RecoveryRounds,
            forget_records=None,
            source=job.history,
            exact_rounds=self.exact_rounds(job.rounds),
            buffer=self.buffer,
            abnormal_threshold=self.abnormal_threshold,
        )
        outcome = run_rounds(job, strategy, job.initial, job.rounds)
        outcome.details.update(
            {
                "exact_rounds": sorted(self.exact_rounds(job.rounds)),
                "abnormal_estimates": strategy.abnormal_count,
                "client_updates_computed": strategy.client_updates_computed,
                "client_updates_estimated": strategy.client_updates_estimated,
            }
        )
        return outcome
