"""FedAvg that keeps the update history and samples clients reproducibly.

A subclass of Flower's ``flwr.serverapp.strategy.FedAvg`` that fixes what unlearning
needs from it:

* client sampling uses a generator seeded by (seed, round), over stable client ids, not
  Flower's unseeded ``random`` over random node ids; clients in ``exclude`` are dropped
  *after* sampling, so retraining without a client sees exactly training's clients minus
  that one (what makes exact rollback exact);
* the config passed to ``configure_*`` is copied, never mutated;
* metrics are aggregated without averaging client ids;
* a round with too few good replies raises instead of carrying on;
* every ``delta_t`` rounds, each client's update (its weights minus the global model the
  round started from) goes into an :class:`~fedunlearn.history.UpdateHistory`.

Example, inside a ServerApp's ``main(grid, context)``::

    registry = ClientRegistry.discover(grid, expected=10)
    history = MemoryHistory(delta_t=2)
    strategy = RecordingFedAvg(registry, TrainInstruction(0, 1.0, 32, 0.05), history)
    result = strategy.start(grid, to_record(initial), num_rounds=20)
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from fedunlearn.federation.cost import Cost
from fedunlearn.federation.protocol import (
    ARRAYS,
    CONFIG,
    METRICS,
    NUM_EXAMPLES,
    TrainInstruction,
    TrainReport,
)
from fedunlearn.federation.registry import ClientRegistry, FederationError, check_replies
from fedunlearn.federation.sampling import SamplingPlan, sample_clients
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays, from_record, subtract, to_record

__all__ = ["RecordingFedAvg", "sample_clients"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientReply:
    """A good training reply, tied to the client id of the node that sent it."""

    client_id: int
    weights: Arrays
    report: TrainReport
    content: RecordDict


class RecordingFedAvg(FedAvg):
    """Federated averaging with a seeded sampler and an update history.

    Parameters
    ----------
    registry : ClientRegistry
        Stable client ids and their nodes.
    instruction : TrainInstruction
        Local training hyperparameters sent each round (``server_round`` is set per
        round); its ``phase`` names the phase in logs and errors.
    history : UpdateHistory, optional
        Where to record kept rounds; None records nothing (e.g. retraining).
    sampling : SamplingPlan
        Fractions and minimum of clients per round, reply quorum and timeout.
    seed : int
        Seed of client sampling (and, through the instruction, of local training).
    exclude : collection of int
        Clients never sent a message (dropped after sampling).
    forget_records : mapping of client id to record ids, optional
        Records each client must leave out of its training (record-level unlearning);
        sent to that client only.
    first_round : int
        The training round that Flower's round 1 stands for. Exact rollback restarts
        training at round ``t`` with ``first_round = t``, so sampling, local seeds and
        history keys continue training's numbering.
    """

    def __init__(
        self,
        registry: ClientRegistry,
        instruction: TrainInstruction,
        history: UpdateHistory | None = None,
        sampling: SamplingPlan | None = None,
        seed: int = 0,
        exclude: Collection[int] = (),
        forget_records: Mapping[int, Sequence[int]] | None = None,
        first_round: int = 1,
    ) -> None:
        self.sampling = sampling or SamplingPlan()
        super().__init__(
            fraction_train=self.sampling.fraction_train,
            fraction_evaluate=self.sampling.fraction_evaluate,
            min_train_nodes=self.sampling.min_train_clients,
            min_evaluate_nodes=1 if self.sampling.fraction_evaluate > 0 else 0,
            min_available_nodes=len(registry),
            weighted_by_key=NUM_EXAMPLES,
            arrayrecord_key=ARRAYS,
            configrecord_key=CONFIG,
        )
        unknown = sorted(set(exclude) - set(registry.client_ids))
        if unknown:
            raise FederationError(f"cannot exclude unknown clients {unknown}")
        self.registry = registry
        self.instruction = replace(instruction, seed=seed)
        self.history = history
        self.seed = seed
        self.exclude = frozenset(exclude)
        self.forget_records = {int(c): tuple(ids) for c, ids in (forget_records or {}).items()}
        if first_round < 1:
            raise ValueError(f"first_round must be >= 1, got {first_round}")
        self.first_round = first_round
        self.cost = Cost()
        self._round_start: dict[int, Arrays] = {}
        self._sent: dict[tuple[str, int], list[Message]] = {}

    @property
    def phase(self) -> str:
        return self.instruction.phase

    def summary(self) -> None:
        log.info(
            "%s: %s, sampling %.2f of %d clients (excluding %s), seed %d",
            type(self).__name__,
            self.phase,
            self.fraction_train,
            len(self.registry),
            sorted(self.exclude),
            self.seed,
        )

    def training_round(self, server_round: int) -> int:
        """The training round Flower's ``server_round`` stands for."""
        return server_round + self.first_round - 1

    # ------------------------------------------------------------------ hooks
    def clients_for_round(self, server_round: int) -> list[int]:
        """Clients to train in ``server_round``: a seeded sample minus ``exclude``."""
        sampled = sample_clients(
            self.registry.client_ids,
            self.fraction_train,
            self.min_train_nodes,
            self.seed,
            self.training_round(server_round),
        )
        return [c for c in sampled if c not in self.exclude]

    def aggregate_replies(
        self, server_round: int, start: Arrays, replies: list[ClientReply]
    ) -> Arrays:
        """The next global model: Flower's example-weighted average of the weights
        (the round's start when no client trained)."""
        if not replies:
            return start
        return from_record(aggregate_arrayrecords([r.content for r in replies], NUM_EXAMPLES))

    def record_round(
        self, server_round: int, start: Arrays, replies: list[ClientReply], sampled: list[int]
    ) -> None:
        """Put the round into the history (updates against the round's *start*)."""
        if self.history is None:
            return
        self.history.record(
            self.training_round(server_round),
            start,
            {r.client_id: subtract(r.weights, start) for r in replies},
            {r.client_id: r.report.num_examples for r in replies},
            sampled,
        )

    # ------------------------------------------------------------------ Flower API
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        clients = self.clients_for_round(server_round)
        self._round_start[server_round] = from_record(arrays)
        messages = self.make_messages(server_round, arrays, config, clients, MessageType.TRAIN)
        self._sent[("train", server_round)] = messages
        return messages

    def make_messages(
        self,
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,
        clients: list[int],
        message_type: str,
    ) -> list[Message]:
        """One message per client: the model and a *copy* of the config plus the
        round's instruction (with the client's own record exclusions, if any)."""
        instruction = replace(self.instruction, server_round=self.training_round(server_round))

        def content_for(exclude: tuple[int, ...]) -> RecordDict:
            merged = ConfigRecord(dict(config))
            merged.update(replace(instruction, exclude_records=exclude).to_config())
            return RecordDict({ARRAYS: arrays, CONFIG: merged})

        shared = content_for(())
        return [
            Message(
                content_for(self.forget_records[c]) if c in self.forget_records else shared,
                dst_node_id=self.registry.node_of(c),
                message_type=message_type,
            )
            for c in clients
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        sent = self._sent.pop(("train", server_round), [])
        replies = list(replies)
        good = [r for r in replies if not r.has_error()]
        bad = [r for r in replies if r.has_error()]
        check_replies(
            sent, good, bad, f"{self.phase} round {server_round}", self.sampling.min_reply_fraction
        )
        start = self._round_start.pop(server_round)
        # Sorted, so the floating-point sum does not depend on reply arrival order.
        parsed = sorted((self._parse(r) for r in good), key=lambda r: r.client_id)
        sampled = [self.registry.client_of(m.metadata.dst_node_id) for m in sent]
        arrays = self.aggregate_replies(server_round, start, parsed)
        self.record_round(server_round, start, parsed, sampled)
        self.cost.add_round(
            epochs=sum(r.report.epochs for r in parsed),
            steps=sum(r.report.steps for r in parsed),
            messages=2 * len(sent),
        )
        return to_record(arrays), self._train_metrics(parsed)

    def _parse(self, reply: Message) -> ClientReply:
        client = self.registry.client_of(reply.metadata.src_node_id)
        try:
            report = TrainReport.from_metrics(reply.content[METRICS])
            weights = from_record(reply.content[ARRAYS])
        except (KeyError, ValueError) as err:
            raise FederationError(f"client {client} sent a malformed train reply: {err}") from err
        if report.client_id != client:
            log.warning("node of client %d reported client id %d", client, report.client_id)
        return ClientReply(client, weights, report, reply.content)

    @staticmethod
    def _train_metrics(replies: list[ClientReply]) -> MetricRecord:
        total = sum(r.report.num_examples for r in replies) or 1
        return MetricRecord(
            {
                "train-loss": sum(r.report.loss * r.report.num_examples for r in replies) / total,
                "clients": len(replies),
                "client-epochs": sum(r.report.epochs for r in replies),
            }
        )

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.fraction_evaluate == 0.0:
            return []
        sampled = sample_clients(
            self.registry.client_ids,
            self.fraction_evaluate,
            self.min_evaluate_nodes,
            self.seed,
            self.training_round(server_round),
            stream=1,
        )
        clients = [c for c in sampled if c not in self.exclude]
        messages = self.make_messages(server_round, arrays, config, clients, MessageType.EVALUATE)
        self._sent[("evaluate", server_round)] = messages
        return messages

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        sent = self._sent.pop(("evaluate", server_round), [])
        replies = list(replies)
        good = [r for r in replies if not r.has_error()]
        check_replies(
            sent,
            good,
            [r for r in replies if r.has_error()],
            f"{self.phase} evaluation round {server_round}",
            self.sampling.min_reply_fraction,
        )
        return super().aggregate_evaluate(server_round, good)
