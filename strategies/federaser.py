"""FedEraser: forget clients by calibrated rollback over the kept update history.

Liu, Ma, Zhang, Liu and Liu, "FedEraser: Enabling Efficient Client-Level Data Removal
from Federated Learning Models", IWQoS 2021.

Needs from the history: every kept round's stored client updates (measured against the
global model the round started from), example counts, and the initial model.

Algorithm (DESIGN.md section 4; the math is in :mod:`fedunlearn.calibration`): start
from the initial global model; for each kept round ``t_j`` the remaining clients that
took part in it train ``r * E_loc`` local epochs from the current calibrated model; each
calibration update is rescaled to the norm of that client's stored update, and the
calibrated model moves by their example-weighted average.

The first kept round (round 1) started from the initial model, which is also where
calibration starts, so the remaining clients' stored updates of round 1 are exactly
what calibration would compute; like the authors' code, the method reuses them
(``reuse_first_round``) and trains nobody in that step.

Record-level requests: the requesting client calibrates on the records it keeps (the
server tells it which to leave out) and its calibration update is rescaled to its
stored update as usual; in the first kept round it calibrates instead of reusing its
stored update, which saw the forgotten records.

Cost: about ``r / delta_t`` of retraining in client epochs
(``(T / delta_t - 1) * r * E_loc`` per client against ``T * E_loc``), and as many
rounds as there are kept rounds.
"""

from __future__ import annotations

from typing import Any

from flwr.app import MetricRecord

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.federation.recording import ClientReply, RecordingFedAvg
from fedunlearn.history import KeptRound, UpdateHistory
from fedunlearn.learning.arrays import Arrays, add, nbytes, subtract, weighted_average
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.calibration import (
    NORM_GRANULARITIES,
    calibrate_update,
    calibrated_rollback_step,
)
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    run_rounds,
)


class CalibratedRollback(RecordingFedAvg):
    """The Flower strategy that runs FedEraser's calibration rounds.

    Server round ``j`` replays kept round ``kept_rounds[j - 1]``: it sends the current
    calibrated model to the remaining clients that took part in that round and
    aggregates their calibrated updates.
    """

    def __init__(
        self,
        *args: Any,
        kept_rounds: list[int],
        source: UpdateHistory,
        granularity: str = "model",
        reuse_first_round: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kept_rounds = kept_rounds
        self.source = source
        self.granularity = granularity
        self.reuse_first_round = reuse_first_round
        self._cache: KeptRound | None = None

    def _replayed(self, server_round: int) -> int:
        return self.kept_rounds[server_round - 1]

    def _kept(self, server_round: int) -> KeptRound:
        # A disk history reads a file per access; each round asks twice.
        t = self._replayed(server_round)
        if self._cache is None or self._cache.round != t:
            self._cache = self.source[t]
        return self._cache

    def _reused(self, server_round: int) -> bool:
        return self.reuse_first_round and self._replayed(server_round) == 1

    def clients_for_round(self, server_round: int, arrays: Arrays) -> list[int]:
        kept = self._kept(server_round)
        remaining = [c for c in kept.clients if c not in self.exclude]
        if self._reused(server_round):
            # Clients that lost records must calibrate: their stored update saw them.
            return [c for c in remaining if c in self.forget_records]
        return remaining

    def aggregate(
        self, server_round: int, start: Arrays, replies: list[ClientReply]
    ) -> tuple[Arrays, MetricRecord | None]:
        return self.calibrated(server_round, start, replies), self.summarise(replies)

    def calibrated(self, server_round: int, start: Arrays, replies: list[ClientReply]) -> Arrays:
        """The calibrated model after replaying kept round ``kept_rounds[server_round-1]``."""
        kept = self._kept(server_round)
        remaining = [c for c in kept.clients if c not in self.exclude]
        if not remaining:  # only forgotten clients took part: nothing to replay
            return start
        if self._reused(server_round):
            fresh = {r.client_id: r for r in replies}
            steps, weights = [], []
            for c in remaining:
                if c in fresh:
                    steps.append(
                        calibrate_update(
                            kept.updates[c],
                            subtract(fresh[c].weights, start),
                            parameter_keys=self.source.parameter_keys,
                            granularity=self.granularity,
                        )
                    )
                    weights.append(fresh[c].num_examples)
                else:
                    steps.append(kept.updates[c])
                    weights.append(kept.num_examples[c])
            return add(start, weighted_average(steps, weights))
        return calibrated_rollback_step(
            start,
            kept.updates,
            {r.client_id: r.weights for r in replies},
            {r.client_id: r.num_examples for r in replies},
            parameter_keys=self.source.parameter_keys,
            granularity=self.granularity,
        )


class FedEraser(UnlearningMethod):
    """Calibrated rollback (FedEraser).

    Parameters
    ----------
    r : float
        Calibration ratio: calibrating clients train ``r * local_epochs`` epochs
        (fractions of an epoch allowed). In (0, 1]; the paper uses 0.5.
    norm : {"model", "layer"}
        Norm granularity of the rescaling: one norm for the whole model, or one per
        parameter tensor.
    delta_t : int
        Replay every ``delta_t``-th round. 0 (default) replays every round the history
        kept; otherwise it must be a multiple of the history's ``delta_t``.
    reuse_first_round : bool
        Reuse the stored updates of round 1 instead of calibrating it (exact; see
        the module docstring).
    """

    name = "federaser"
    phase = "calibrate"
    supports_records = True
    needs_weighted_mean = True

    def __init__(
        self,
        r: float = 0.5,
        norm: str = "model",
        delta_t: int = 0,
        reuse_first_round: bool = True,
    ) -> None:
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r <= 1:
            raise ValueError(f"r must be a number in (0, 1], got {r!r}")
        if norm not in NORM_GRANULARITIES:
            raise ValueError(f"norm must be one of {NORM_GRANULARITIES}, got {norm!r}")
        if isinstance(delta_t, bool) or not isinstance(delta_t, int) or delta_t < 0:
            raise ValueError(f"delta_t must be 0 or a positive integer, got {delta_t!r}")
        if not isinstance(reuse_first_round, bool):
            raise ValueError(f"reuse_first_round must be true or false, got {reuse_first_round!r}")
        self.r = float(r)
        self.norm = norm
        self.delta_t = delta_t
        self.reuse_first_round = reuse_first_round

    def check(self, config: ExperimentConfig) -> list[str]:
        kept = config.history.delta_t
        if self.delta_t and self.delta_t % kept:
            return [
                f"unlearning.federaser.delta_t ({self.delta_t}) must be a multiple of "
                f"history.delta_t ({kept})"
            ]
        return []

    def history_problems(self, history: UpdateHistory) -> list[str]:
        problems = super().history_problems(history)
        if self.delta_t and self.delta_t % history.delta_t:
            problems.append(
                f"federaser's delta_t ({self.delta_t}) must be a multiple of the "
                f"history's delta_t ({history.delta_t})"
            )
        return problems

    def client_needs(self, job: UnlearningJob) -> dict[int, set[str]]:
        """Calibrating clients train ``r`` of their epochs: below 1 they must honour
        the contract (and owners of forgotten records always). Only clients sampled in
        a replayed round calibrate; with partial sampling many never do."""
        needs = super().client_needs(job)
        if self.r != 1:
            taking_part = job.history.participation
            sampled = {c for t in self.replayed_rounds(job.history) for c in taking_part.get(t, ())}
            for client in sorted(sampled.intersection(job.remaining)):
                needs.setdefault(client, set()).add("honours_contract")
        return needs

    def history_bytes(self, history: UpdateHistory) -> int:
        """The kept client updates and the initial model."""
        return history.bytes_of(global_models=False) + nbytes(history.initial_model)

    def replayed_rounds(self, history: UpdateHistory) -> list[int]:
        """Kept rounds this instance replays."""
        step = self.delta_t or history.delta_t
        return [t for t in history.rounds if (t - 1) % step == 0]

    def expected_rounds(self, job: UnlearningJob) -> int:
        return len(self.replayed_rounds(job.history))

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        rounds = self.replayed_rounds(job.history)
        strategy = job.make_trainer(
            phase=self.phase,
            epochs_scale=self.r,
            strategy_class=CalibratedRollback,
            seed=derive_seed(job.seed, "federaser-calibration"),
            kept_rounds=rounds,
            source=job.history,
            granularity=self.norm,
            reuse_first_round=self.reuse_first_round,
        )
        epochs = job.instruction.epochs * self.r if job.instruction else None
        details = {"replayed_rounds": rounds, "calibration_epochs": epochs}
        return run_rounds(job, strategy, job.initial, len(rounds), details)
