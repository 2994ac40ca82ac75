"""Rounds addressed to clients by their stable id: the half of a history-keeping
strategy that decides who is sent what, and which replies count.

:class:`StableIdMixin` sits between :class:`~fedunlearn.federation.recording.RecordingMixin`
and a Flower strategy of the FedAvg family. It samples clients with a generator seeded by
(seed, round) over stable ids (so retraining samples training's clients), never sends to
excluded clients, puts the :class:`~fedunlearn.federation.contract.UnlearningContract`
(with each client's own records to leave out) into every message, and counts replies:
who failed or fell silent is recorded by round, and too few good replies raise
:class:`~fedunlearn.federation.registry.FederationError` naming the clients.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedunlearn.federation.contract import UnlearningContract
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.registry import (
    ClientRegistry,
    FederationError,
    check_replies,
    missing_clients,
)
from fedunlearn.federation.sampling import sample_clients
from fedunlearn.learning.arrays import Arrays

__all__ = ["StableIdMixin"]


class StableIdMixin:
    """Sends a FedAvg-family strategy's rounds to clients chosen by stable id.

    The keyword arguments are documented on
    :class:`~fedunlearn.federation.recording.RecordingMixin`, which adds this mixin to a
    strategy; every other argument goes to the wrapped strategy unchanged.
    """

    # These attributes come from the wrapped Flower strategy.
    fraction_train: float
    fraction_evaluate: float
    min_train_nodes: int
    min_evaluate_nodes: int
    arrayrecord_key: str
    configrecord_key: str

    def __init__(
        self,
        *args: Any,
        seed: int | None = None,
        clients: ClientRegistry | None = None,
        exclude: Collection[int] = (),
        forget_records: Mapping[int, Sequence[int]] | None = None,
        first_round: int = 1,
        phase: str = "train",
        epochs_scale: float = 1.0,
        instruction: TrainInstruction | None = None,
        min_reply_fraction: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        wrapped = next(
            c
            for c in type(self).__mro__
            if "__init__" in c.__dict__ and not issubclass(c, StableIdMixin)
        )
        bound = inspect.signature(wrapped.__init__).bind(self, *args, **kwargs).arguments
        self.strategy_kwargs = {k: v for k, v in bound.items() if k != "self"}
        """The wrapped strategy's own arguments (to build its like for unlearning)."""
        if first_round < 1:
            raise ValueError(f"first_round must be >= 1, got {first_round}")
        if epochs_scale <= 0:
            raise ValueError(f"epochs_scale must be > 0, got {epochs_scale}")
        self.seed = seed
        self.clients = clients if clients is not None else ClientRegistry.learned()
        if not self.clients.learning:
            unknown = sorted(set(exclude) - set(self.clients.client_ids))
            if unknown:
                raise FederationError(f"cannot exclude unknown clients {unknown}")
        self.exclude = frozenset(int(c) for c in exclude)
        self.forget_records = {int(c): tuple(ids) for c, ids in (forget_records or {}).items()}
        self.first_round = first_round
        self.phase = phase
        self.epochs_scale = float(epochs_scale)
        self.instruction = instruction
        self.min_reply_fraction = min_reply_fraction
        self.failures: dict[int, list[int]] = {}
        """Clients sent a message that did not reply in time or replied with an error,
        by training round (the round went on without them)."""
        self._sent: dict[tuple[str, int], list[Message]] = {}
        self.asked_more: dict[int, bool] = {}
        """By node: whether its last train message asked for fewer epochs or fewer
        records than usual (a reply must then say it honoured the contract)."""

    def training_round(self, server_round: int) -> int:
        """The training round Flower's ``server_round`` stands for."""
        return server_round + self.first_round - 1

    def clients_for_round(self, server_round: int, arrays: Arrays) -> list[int] | None:
        """Clients to train in ``server_round``, or None to let the wrapped strategy
        sample (then ``exclude`` is dropped from its sample). With a ``seed``: a seeded
        sample of the known clients minus ``exclude``."""
        if self.seed is None:
            return None
        sampled = sample_clients(
            self.clients.client_ids,
            self.fraction_train,
            self.min_train_nodes,
            self.seed,
            self.training_round(server_round),
        )
        return [c for c in sampled if c not in self.exclude]

    def targets(self, nodes: Iterable[int]) -> list[tuple[int, int]]:
        """(client, node) of the given nodes, the excluded clients dropped."""
        pairs = [(self.clients.client_of(n), n) for n in nodes]
        return [(c, n) for c, n in pairs if c not in self.exclude]

    def contract_for(self, client: int) -> UnlearningContract:
        """What this phase asks of ``client`` (its share of epochs, records to leave out)."""
        return UnlearningContract(
            self.phase, self.epochs_scale, self.forget_records.get(client, ())
        )

    def make_messages(
        self,
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,
        targets: list[tuple[int, int]],
        message_type: str,
    ) -> list[Message]:
        """One message per (client, node): the model and a copy of the config plus the
        round number, fedunlearn's instruction (if any) and the unlearning contract (with
        the client's own record exclusions). Remembered until the replies are counted."""
        training_round = self.training_round(server_round)
        messages = []
        for client, node in targets:
            merged = ConfigRecord(dict(config))
            merged["server-round"] = training_round
            terms = self.contract_for(client)
            if self.instruction is not None:
                instruction = self.instruction.__dict__ | {
                    "server_round": training_round,
                    "exclude_records": terms.exclude_records,
                }
                merged.update(TrainInstruction(**instruction).to_config())
            merged.update(terms.to_config())
            if message_type == MessageType.TRAIN:
                self.asked_more[node] = terms.asks_more
            content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: merged})
            messages.append(Message(content, dst_node_id=node, message_type=message_type))
        kind = "train" if message_type == MessageType.TRAIN else "evaluate"
        self._sent[(kind, server_round)] = messages
        return messages

    def good_replies(
        self, kind: str, server_round: int, replies: Iterable[Message]
    ) -> list[Message]:
        """The replies without errors to the ``kind`` (train/evaluate) messages of
        ``server_round``; who failed or was silent in training is kept in ``failures``;
        too few raise FederationError when ``min_reply_fraction`` is set."""
        sent = self._sent.pop((kind, server_round), [])
        replies = list(replies)
        good = [r for r in replies if not r.has_error()]
        training_round = self.training_round(server_round)
        missing = missing_clients(sent, good, self.clients.client_of)
        if missing and kind == "train":  # the round goes on without them where allowed
            self.failures[training_round] = missing
        if self.min_reply_fraction is not None:
            check_replies(
                sent,
                good,
                [r for r in replies if r.has_error()],
                f"{self.phase}{'' if kind == 'train' else ' evaluation'} round {training_round}",
                self.min_reply_fraction,
                lambda node: f"client {self.clients.client_of(node)}",
            )
        return good

    def sent_nodes(self, server_round: int) -> list[int]:
        """The nodes sent a train message in ``server_round`` (before its replies are
        counted)."""
        return [m.metadata.dst_node_id for m in self._sent.get(("train", server_round), [])]

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.fraction_evaluate == 0.0:
            return []
        config = ConfigRecord(dict(config))
        if self.seed is not None:
            sampled = sample_clients(
                self.clients.client_ids,
                self.fraction_evaluate,
                self.min_evaluate_nodes,
                self.seed,
                self.training_round(server_round),
                stream=1,
            )
            targets = [(c, self.clients.node_of(c)) for c in sampled if c not in self.exclude]
        else:
            chosen = super().configure_evaluate(server_round, arrays, config, grid)  # type: ignore[misc]
            targets = self.targets(m.metadata.dst_node_id for m in chosen)
        return self.make_messages(server_round, arrays, config, targets, MessageType.EVALUATE)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        good = self.good_replies("evaluate", server_round, replies)
        return super().aggregate_evaluate(server_round, good)  # type: ignore[misc]
