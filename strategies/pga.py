"""PGA: the forgotten client unlearns by projected gradient ascent, then the others
train a few rounds.

Halimi, Kadhe, Rawat and Baracaldo, "Federated Unlearning: How to Efficiently Erase a
Client in FL?", 2022 (arXiv 2207.05521).

The client to forget (it must still be connected and cooperate) computes a reference
model, the aggregate without its own contribution, ``w_ref = (w - p w_last) / (1 - p)``
from the trained model ``w``, its last local model ``w_last`` and its share ``p`` in
the last aggregate. Starting from ``w_ref`` it *maximises* its loss by gradient ascent,
projecting after every step onto the L2 ball of radius ``delta`` around ``w_ref`` (by
default a third of the mean distance from ``w_ref`` to random models), and stops early
once its accuracy on its own data falls below ``stop_accuracy``. The server then runs
``post_rounds`` rounds of FedAvg with the remaining clients to recover utility.

Needs from the history: only who took part in the last round (for ``p``); the client
keeps its own last local model. Cost: the ascent (at most ``epochs`` epochs of one
client) plus ``post_rounds`` federated rounds. Several forgotten clients ascend one
after another.

Record-level requests (a variant, not in the paper): the requesting client ascends on
the named records only, starting from the model as it is (no reference to subtract),
within the same ball; the post-training rounds then run with everyone, the requester
leaving those records out.
"""

from __future__ import annotations

import time

from flwr.app import Message, RecordDict

from fedunlearn.federation.cost import Cost
from fedunlearn.federation.protocol import ARRAYS, ASCENT, CONFIG, METRICS, AscentInstruction
from fedunlearn.federation.registry import FederationError, send_and_check
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import from_record, to_record
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.method import (
    UnlearningJob,
    UnlearningMethod,
    UnlearningOutcome,
    round_metrics,
)


class PGA(UnlearningMethod):
    """Projected gradient ascent by the forgotten client, then post-training.

    Parameters
    ----------
    epochs : float
        Most epochs of ascent over the client's data (> 0).
    learning_rate : float
        Ascent step size (> 0).
    radius : float
        Radius of the ball around the reference model; 0 for the paper's default.
    stop_accuracy : float
        Stop once accuracy on the client's own data is below this, in [0, 1].
    batch_size : int
        Ascent minibatch size.
    post_rounds : int
        FedAvg rounds of the remaining clients afterwards (>= 0).
    """

    name = "pga"
    phase = "pga-post"
    supports_records = True
    private_client_work = False  # the ascent is plain SGD

    def __init__(
        self,
        epochs: float = 5.0,
        learning_rate: float = 0.01,
        radius: float = 0.0,
        stop_accuracy: float = 0.12,
        batch_size: int = 32,
        post_rounds: int = 3,
    ) -> None:
        for option, value in (("epochs", epochs), ("learning_rate", learning_rate)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{option} must be a number > 0, got {value!r}")
        if isinstance(radius, bool) or not isinstance(radius, int | float) or radius < 0:
            raise ValueError(f"radius must be a number >= 0, got {radius!r}")
        if not isinstance(stop_accuracy, int | float) or not 0 <= stop_accuracy <= 1:
            raise ValueError(f"stop_accuracy must be in [0, 1], got {stop_accuracy!r}")
        for option, value, low in (("batch_size", batch_size, 1), ("post_rounds", post_rounds, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{option} must be an integer >= {low}, got {value!r}")
        self.epochs = float(epochs)
        self.learning_rate = float(learning_rate)
        self.radius = float(radius)
        self.stop_accuracy = float(stop_accuracy)
        self.batch_size = batch_size
        self.post_rounds = post_rounds

    def client_needs(self, job: UnlearningJob) -> dict[int, set[str]]:
        """The clients to forget unlearn their own data by gradient ascent."""
        needs = super().client_needs(job)
        for client in [*job.new.clients, *job.new.record_map]:
            needs.setdefault(client, set()).add("serves_ascent")
        return needs

    def history_bytes(self, history: UpdateHistory) -> int:
        return 0

    def expected_rounds(self, job: UnlearningJob) -> int:
        return max(1, self.post_rounds)

    def share_in_last_round(self, job: UnlearningJob, client: int) -> float:
        """The client's example share in the last training round's aggregate."""
        last = job.history.participation.get(job.history.num_rounds, ())
        if client not in last:
            return 0.0
        counts = {c: job.registry.num_examples(c) for c in last}
        return counts[client] / sum(counts.values())

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        started = time.perf_counter()
        cost = Cost()
        model = job.original
        ascents = []
        targets = [(c, ()) for c in sorted(job.new.clients)] + list(job.new.records)
        for client, records in targets:
            instruction = AscentInstruction(
                records=tuple(records),
                weight=self.share_in_last_round(job, client) if not records else 0.0,
                radius=self.radius,
                epochs=self.epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                stop_accuracy=self.stop_accuracy,
                seed=derive_seed(job.seed, "pga"),
            )
            message = Message(
                RecordDict({ARRAYS: to_record(model), CONFIG: instruction.to_config()}),
                dst_node_id=job.registry.node_of(client),
                message_type=ASCENT,
            )
            (reply,) = send_and_check(
                job.grid, [message], timeout=job.sampling.timeout, what=f"ascent of client {client}"
            )
            try:
                metrics = dict(reply.content[METRICS])
                model = from_record(reply.content[ARRAYS])
            except KeyError as err:
                raise FederationError(
                    f"client {client} sent a malformed ascent reply: {err}"
                ) from err
            cost.add_round(epochs=float(metrics["epochs"]), steps=int(metrics["steps"]), messages=2)
            ascents.append({"client": client, **metrics})
        per_round = {}
        if self.post_rounds:
            strategy = job.make_trainer(phase="pga-post", first_round=job.rounds + 1)
            result = strategy.start(
                job.grid,
                to_record(model),
                num_rounds=self.post_rounds,
                timeout=job.sampling.timeout,
                evaluate_fn=job.evaluate_fn,
            )
            model = from_record(result.arrays)
            per_round = round_metrics(result)
            cost.add_round(
                strategy.cost.client_epochs, strategy.cost.client_steps, strategy.cost.messages
            )
            cost.rounds += strategy.cost.rounds - 1
        elif job.evaluate_fn is not None:
            job.evaluate_fn(0, to_record(model))
        cost.wall_seconds = time.perf_counter() - started
        return UnlearningOutcome(
            arrays=model, cost=cost, round_metrics=per_round, details={"ascents": ascents}
        )
