"""Exact rollback: restart training where the forgotten clients first took part.

As in FATS (Tao et al., "Communication Efficient and Provable Federated Unlearning",
VLDB 2024): rounds before a client first participated never saw its data, so the
global model at that point is already what retraining would have reached. Exact
rollback returns to the last kept global model no later than the first round any
forgotten client (or client that lost records) took part in, and retrains from there
without the forgotten data, with training's round numbers, sampling and local seeds.

Needs from the history: the global model of every kept round and the participation
of every round. Exact: with seeded sampling it reproduces retraining's model (the
rounds before the restart are identical by construction, the rounds after are
retraining's rounds). Cost: the rounds from the restart on; with every client in
every round that is all of them, with partial participation it can be far fewer.
Supports record-level requests (the owner retrains without the named records).
"""

from __future__ import annotations

from fedunlearn.history import UpdateHistory
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    run_rounds,
)


def restart_round(history: UpdateHistory, clients: set[int]) -> int:
    """The kept round to restart from: the last one no later than the first round any
    of ``clients`` took part in (round 1 when none ever did, or none can be found)."""
    firsts = [r for c in clients if (r := history.first_participation(c)) is not None]
    if not firsts:
        return history.num_rounds + 1  # nobody to forget ever trained: nothing to redo
    first = min(firsts)
    return max((t for t in history.rounds if t <= first), default=1)


class Rollback(UnlearningMethod):
    """Exact rollback to before the forgotten clients first took part (no options)."""

    name = "rollback"
    phase = "rollback"
    exact = True
    supports_records = True
    central_dp = True

    def history_bytes(self, history: UpdateHistory) -> int:
        """The kept global models (participation lists are negligible)."""
        return history.bytes_of(updates=False)

    def _start(self, job: UnlearningJob) -> int:
        affected = set(job.forget.clients) | set(job.forget.record_map)
        return restart_round(job.history, affected)

    def expected_rounds(self, job: UnlearningJob) -> int:
        return max(0, job.rounds - self._start(job) + 1)

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        start = self._start(job)
        if start > job.rounds:
            return UnlearningOutcome(arrays=job.original, details={"restart_round": None})
        strategy = job.make_trainer(phase=self.phase, first_round=start)
        return run_rounds(
            job,
            strategy,
            job.history[start].global_model,
            job.rounds - start + 1,
            details={"restart_round": start},
        )
