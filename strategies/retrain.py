"""Retraining from scratch without the forgotten clients: the exact reference.

Needs from the history: only the initial model. Runs the same number of rounds as
training, from the same initial model, with the same seeded sampler minus the
forgotten clients and the same local training seeds, so its model is what training
would have produced had those clients never joined (or, for record-level requests,
had those records never been there: their owners train without them). Every other method is audited
against it. Cost: a full training run on the remaining clients.
"""

from __future__ import annotations

from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import nbytes
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    run_rounds,
)


class Retrain(UnlearningMethod):
    """Retrain from the initial model on the remaining clients (no options)."""

    name = "retrain"
    phase = "retrain"
    exact = True
    supports_records = True
    central_dp = True

    def history_bytes(self, history: UpdateHistory) -> int:
        """Only the initial model."""
        return nbytes(history.initial_model)

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        return run_rounds(job, job.make_trainer(phase=self.phase), job.initial, job.rounds)
