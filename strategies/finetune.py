"""Fine-tuning: continue FedAvg from the trained model without the forgotten data.

The simplest approximate method and a common baseline (e.g. in Halimi et al. 2022 and
Liu et al. 2021): the remaining clients keep training the trained model for a few
rounds, hoping the forgotten data's influence fades. It usually fades slowly: a
backdoor often survives.

Needs from the history: nothing. Cost: ``rounds`` federated rounds of the remaining
clients. Supports record-level requests (the owner trains without the named records).
"""

from __future__ import annotations

from fedunlearn.history import UpdateHistory
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    run_rounds,
)


class FineTune(UnlearningMethod):
    """Continue FedAvg without the forgotten data.

    Parameters
    ----------
    rounds : int
        Federated rounds to run (>= 1).
    """

    name = "finetune"
    phase = "finetune"
    supports_records = True
    central_dp = True

    def __init__(self, rounds: int = 5) -> None:
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
        self.rounds = rounds

    def history_bytes(self, history: UpdateHistory) -> int:
        return 0

    def expected_rounds(self, job: UnlearningJob) -> int:
        return self.rounds

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        # Rounds after training's, so sampling and seeds do not repeat training's.
        strategy = job.make_trainer(phase=self.phase, first_round=job.rounds + 1)
        return run_rounds(job, strategy, job.original, self.rounds)
