"""FedAccum: replay the remaining clients' stored updates, without calibration.

The baseline of Liu et al. (FedEraser, IWQoS 2021, section VI): start from the initial
global model and, for every kept round, add the example-weighted average of the
stored updates of the clients that stay. Unlike FedEraser nobody trains, so the
updates were computed against models that no longer exist; the paper shows the result
drifts. It shows what calibration buys.

Needs from the history: the stored updates of every kept round and the initial model.
Cost: no client computation, no communication; server arithmetic only. Whole clients
only (a stored update cannot be split by record).
"""

from __future__ import annotations

import time

from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import add, nbytes, to_record, weighted_average
from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome


class FedAccum(UnlearningMethod):
    """Accumulate the remaining clients' stored updates (no options)."""

    name = "fedaccum"
    needs_weighted_mean = True
    trains_clients = False

    def history_bytes(self, history: UpdateHistory) -> int:
        return history.bytes_of(global_models=False) + nbytes(history.initial_model)

    def expected_rounds(self, job: UnlearningJob) -> int:
        return len(job.history.rounds)

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        started = time.perf_counter()
        model = job.initial
        if job.evaluate_fn is not None:
            job.evaluate_fn(0, to_record(model))
        for step, kept in enumerate(job.history, start=1):
            remaining = [c for c in kept.clients if c not in job.forget.clients]
            if remaining:
                model = add(
                    model,
                    weighted_average(
                        [kept.updates[c] for c in remaining],
                        [kept.num_examples[c] for c in remaining],
                    ),
                )
            if job.evaluate_fn is not None:
                job.evaluate_fn(step, to_record(model))
        outcome = UnlearningOutcome(arrays=model)
        outcome.cost.wall_seconds = time.perf_counter() - started
        return outcome
