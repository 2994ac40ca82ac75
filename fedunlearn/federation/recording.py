"""Flower strategies that keep the update history: a drop-in for ``FedAvg``.

Put :class:`RecordingFedAvg` on the strategy line of any Flower app (it takes
``FedAvg``'s arguments and trains exactly as ``FedAvg`` does) and it keeps, every
``delta_t`` rounds, each client's update (its weights minus the global model the round
*started* from), its example count, who was sampled and the global model: the
:class:`~fedunlearn.history.UpdateHistory` that unlearning works from::

    strategy = RecordingFedAvg(fraction_evaluate=0.5, delta_t=2)
    result = strategy.start(grid=grid, initial_arrays=arrays, num_rounds=20,
                            train_config=ConfigRecord({"lr": 0.1}))
    strategy.history            # what unlearn() needs

Clients are keyed by a stable id: the ``partition-id`` a client reports in its metrics,
or its Flower node id when it reports none (the mapping is kept in the history). What a
client does not report (epochs, loss) is recorded as unknown, never guessed.

:class:`RecordingMixin` adds the same to other strategies of the FedAvg family
(``class RecordingFedProx(RecordingMixin, FedProx)``). The history notes whether every
global model really moved by the weighted mean of the client updates; with a server
optimizer (FedAvgM, FedAdam, ...) or a robust aggregation it did not, and methods that
rebuild the model from stored updates refuse such a history.

fedunlearn's own federation builds its strategies with :meth:`RecordingMixin.for_phase`,
which adds seeded sampling over stable ids (``seed``), clients that are never sampled
(``exclude``), records each client leaves out (``forget_records``) and the training
round numbering a restart continues (``first_round``).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx, Result
from flwr.serverapp.strategy.strategy_utils import validate_message_reply_consistency

from fedunlearn.federation import contract
from fedunlearn.federation.contract import ContractError, UnlearningContract
from fedunlearn.federation.cost import Cost
from fedunlearn.federation.protocol import CLIENT_ID, TrainInstruction
from fedunlearn.federation.registry import (
    ClientRegistry,
    FederationError,
    check_replies,
    missing_clients,
)
from fedunlearn.federation.sampling import FEDAVG_ARGUMENTS, SamplingPlan, sample_clients
from fedunlearn.history import MemoryHistory, UpdateHistory
from fedunlearn.learning.arrays import Arrays, from_record, subtract, to_record

__all__ = [
    "ClientReply",
    "DivergedError",
    "RecordingFedAvg",
    "RecordingFedProx",
    "RecordingMixin",
    "non_finite",
]

log = logging.getLogger(__name__)

WEIGHTED_MEAN = "weighted-mean"


class DivergedError(RuntimeError):
    """A global model has non-finite weights: training (or a method's rounds) diverged."""


def non_finite(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """Names of the arrays holding NaN or infinite values."""
    return [k for k, v in arrays.items() if not np.all(np.isfinite(np.asarray(v)))]


@dataclass(frozen=True)
class ClientReply:
    """A good training reply, tied to the stable id of the client that sent it.

    ``epochs``, ``steps`` and ``loss`` are None when the client did not report them.
    """

    client_id: int
    weights: Arrays
    num_examples: int
    content: RecordDict
    node_id: int = 0
    epochs: float | None = None
    steps: int | None = None
    loss: float | None = None
    honours_contract: bool = False
    serves_ascent: bool = False


def _number(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class RecordingMixin:
    """Keeps the update history of a FedAvg-family Flower strategy.

    Put it first among the bases: ``class RecordingFedProx(RecordingMixin, FedProx)``.
    The strategy's own arguments pass through unchanged; the mixin adds these keyword
    arguments.

    Parameters
    ----------
    history : UpdateHistory, optional
        Where to keep the history. By default a new in-memory one with ``delta_t``.
    delta_t : int
        Keep rounds ``1, 1 + delta_t, ...`` when ``history`` is not given.
    keep_history : bool
        False records nothing (retraining, fine-tuning: phases that need no history).
    seed : int, optional
        Sample clients with a generator seeded by (seed, round) over stable ids, so
        another run (retraining) samples the same clients; None samples as the wrapped
        strategy does (Flower's unseeded ``random``).
    clients : ClientRegistry, optional
        Known client ids and their nodes; by default they are learned from replies.
    exclude : collection of int
        Clients never sent a message (dropped *after* sampling, so retraining without a
        client samples exactly training's clients minus that one).
    forget_records : mapping of client id to record ids, optional
        Records each client must leave out (sent to that client only, see
        :mod:`fedunlearn.federation.contract`).
    first_round : int
        The training round Flower's round 1 stands for (a restart continues training's
        numbering of rounds, sampling and history).
    phase : str
        Why clients train (``train``, ``calibrate``, ...), in every message.
    epochs_scale : float
        Ask clients to train this fraction of their usual local epochs.
    instruction : TrainInstruction, optional
        fedunlearn's own clients' training hyperparameters, added to every message.
    min_reply_fraction : float, optional
        Raise FederationError when fewer than this share of sampled clients reply; None
        carries on with whoever replied, as Flower's strategies do (the failures are
        recorded in ``failures``).
    """

    # These attributes come from the wrapped Flower strategy.
    fraction_train: float
    fraction_evaluate: float
    min_train_nodes: int
    min_evaluate_nodes: int
    min_available_nodes: int
    weighted_by_key: str
    arrayrecord_key: str
    configrecord_key: str
    train_metrics_aggr_fn: Callable[[list[RecordDict], str], MetricRecord]

    def __init__(
        self,
        *args: Any,
        history: UpdateHistory | None = None,
        delta_t: int = 1,
        keep_history: bool = True,
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
            if c is not RecordingMixin
            and "__init__" in c.__dict__
            and not issubclass(c, RecordingMixin)
        )
        bound = inspect.signature(wrapped.__init__).bind(self, *args, **kwargs).arguments
        self.strategy_kwargs = {k: v for k, v in bound.items() if k != "self"}
        """The wrapped strategy's own arguments (to build its like for unlearning)."""
        if first_round < 1:
            raise ValueError(f"first_round must be >= 1, got {first_round}")
        if epochs_scale <= 0:
            raise ValueError(f"epochs_scale must be > 0, got {epochs_scale}")
        self.history = (
            history if history is not None or not keep_history else MemoryHistory(delta_t)
        )
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
        self.default_train_config: dict[str, Any] = {}
        """The config ``start`` sends when it is given none (an unlearning phase sends
        the app's own config)."""
        self.default_evaluate_config: dict[str, Any] = {}
        self.cost = Cost()
        self.failures: dict[int, list[int]] = {}
        """Clients sent a message that did not reply in time or replied with an error,
        by training round (the round went on without them)."""
        self._round_start: dict[int, Arrays] = {}
        self._sent: dict[tuple[str, int], list[Message]] = {}
        self._asked_more: dict[int, bool] = {}
        self._weighted_mean = True
        self._capabilities: dict[int, dict[str, bool]] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def for_phase(
        cls,
        *,
        registry: ClientRegistry,
        instruction: TrainInstruction | None = None,
        history: UpdateHistory | None = None,
        sampling: SamplingPlan | None = None,
        seed: int | None = 0,
        exclude: Collection[int] = (),
        forget_records: Mapping[int, Sequence[int]] | None = None,
        first_round: int = 1,
        phase: str | None = None,
        epochs_scale: float = 1.0,
        **kwargs: Any,
    ) -> Self:
        """The strategy of one phase of unlearning (or of fedunlearn's own training):
        sampling, record keys and the app's config from ``sampling``; every argument of
        :data:`~fedunlearn.federation.trainer.TRAINER_ARGUMENTS`."""
        plan = sampling or SamplingPlan()
        if instruction is not None and seed is not None:
            instruction = TrainInstruction(**{**instruction.__dict__, "seed": seed})
        arguments = {
            "train_metrics_aggr_fn": round_summary,
            **plan.strategy_kwargs,
            **plan.fedavg_kwargs(len(registry) if not registry.learning else None),
            **kwargs,
        }
        strategy = cls(
            **arguments,
            history=history,
            keep_history=history is not None,
            seed=seed,
            clients=registry,
            exclude=exclude,
            forget_records=forget_records,
            first_round=first_round,
            phase=phase or (instruction.phase if instruction else "train"),
            epochs_scale=epochs_scale,
            instruction=instruction,
            min_reply_fraction=plan.min_reply_fraction,
        )
        strategy.default_train_config = dict(plan.train_config)
        strategy.default_evaluate_config = dict(plan.evaluate_config)
        return strategy

    def training_round(self, server_round: int) -> int:
        """The training round Flower's ``server_round`` stands for."""
        return server_round + self.first_round - 1

    # ------------------------------------------------------------------ hooks
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

    def aggregate(
        self, server_round: int, start: Arrays, replies: list[ClientReply]
    ) -> tuple[Arrays, MetricRecord | None]:
        """The next global model and the round's metrics: the wrapped strategy's own
        aggregation (the round's start when no client trained)."""
        if not replies:
            return start, self.summarise(replies)
        arrays, metrics = super().aggregate_train(server_round, [_as_reply(r) for r in replies])  # type: ignore[misc]
        return (from_record(arrays) if arrays is not None else start), metrics

    def summarise(self, replies: list[ClientReply]) -> MetricRecord | None:
        """The round's training metrics by ``train_metrics_aggr_fn`` (None for a round
        nobody trained in, unless it is fedunlearn's :func:`round_summary`)."""
        if not replies and self.train_metrics_aggr_fn is not round_summary:
            return None
        return self.train_metrics_aggr_fn([r.content for r in replies], self.weighted_by_key)

    # ------------------------------------------------------------------ Flower API
    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Flower's ``start``; the history gets the final model and how training ran."""
        if train_config is None:
            train_config = ConfigRecord(dict(self.default_train_config))
        if evaluate_config is None:
            evaluate_config = ConfigRecord(dict(self.default_evaluate_config))
        result: Result = super().start(  # type: ignore[misc]
            grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config, evaluate_fn
        )
        if self.history is not None:
            self.history.set_final_model(from_record(result.arrays))
            self.history.describe_training(**self.training_description(train_config))
        return result

    def training_description(self, train_config: ConfigRecord) -> dict[str, Any]:
        """What unlearning needs to know of how this strategy trained."""
        sources = self.clients.id_sources
        return {
            "strategy": f"{type(self).__module__}:{type(self).__qualname__}",
            "aggregation": self.aggregation(),
            "fraction_train": self.fraction_train,
            "fraction_evaluate": self.fraction_evaluate,
            "min_train_nodes": self.min_train_nodes,
            "min_evaluate_nodes": self.min_evaluate_nodes,
            "min_available_nodes": self.min_available_nodes,
            "weighted_by_key": self.weighted_by_key,
            "arrayrecord_key": self.arrayrecord_key,
            "configrecord_key": self.configrecord_key,
            "seed": self.seed,
            "train_config": {k: v for k, v in dict(train_config).items() if _jsonable(v)},
            "strategy_kwargs": {
                k: v
                for k, v in self.strategy_kwargs.items()
                if k not in FEDAVG_ARGUMENTS and _jsonable(v)
            },
            "clients": {
                str(c): {
                    "node": node,
                    "id_from": sources.get(c, "identified"),
                    "num_examples": self.clients.num_examples(c),
                    **self._capabilities.get(c, {}),
                }
                for c, node in self.clients.nodes.items()
            },
            "failures": {str(r): c for r, c in self.failures.items()},
        }

    def aggregation(self) -> str:
        """``weighted-mean`` if the aggregation is FedAvg's and every recorded round
        checked out; otherwise the strategy whose aggregation is something else."""
        owner = next(
            c
            for c in type(self).__mro__[type(self).__mro__.index(RecordingMixin) + 1 :]
            if "aggregate_train" in c.__dict__
        )
        if owner is not FedAvg:
            return f"{owner.__qualname__} aggregation (not the weighted mean of updates)"
        return WEIGHTED_MEAN if self._weighted_mean else "not the weighted mean of updates"

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        start = from_record(arrays)
        config = ConfigRecord(dict(config))  # the caller's config is never mutated
        clients = self.clients_for_round(server_round, start)
        # The wrapped strategy always configures the round: its own config keys (FedProx's
        # proximal-mu) and state (FedAvgM's) are set even when fedunlearn chooses whom.
        sampled = super().configure_train(server_round, arrays, config, grid)  # type: ignore[misc]
        if clients is None:  # the wrapped strategy's sample
            targets = self._targets([m.metadata.dst_node_id for m in sampled])
        else:
            targets = [(c, self.clients.node_of(c)) for c in clients if c not in self.exclude]
        self._round_start[server_round] = start
        messages = self.make_messages(server_round, arrays, config, targets, MessageType.TRAIN)
        self._sent[("train", server_round)] = messages
        return messages

    def _targets(self, nodes: list[int]) -> list[tuple[int, int]]:
        """(client, node) of sampled nodes, the excluded clients dropped."""
        pairs = [(self.clients.client_of(n), n) for n in nodes]
        return [(c, n) for c, n in pairs if c not in self.exclude]

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
        the client's own record exclusions)."""
        training_round = self.training_round(server_round)
        messages = []
        for client, node in targets:
            merged = ConfigRecord(dict(config))
            merged["server-round"] = training_round
            excluded = self.forget_records.get(client, ())
            if self.instruction is not None:
                instruction = self.instruction.__dict__ | {
                    "server_round": training_round,
                    "exclude_records": excluded,
                }
                merged.update(TrainInstruction(**instruction).to_config())
            terms = UnlearningContract(self.phase, self.epochs_scale, excluded)
            merged.update(terms.to_config())
            if message_type == MessageType.TRAIN:
                self._asked_more[node] = terms.asks_more
            content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: merged})
            messages.append(Message(content, dst_node_id=node, message_type=message_type))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        sent = self._sent.pop(("train", server_round), [])
        replies = list(replies)
        good = [r for r in replies if not r.has_error()]
        bad = [r for r in replies if r.has_error()]
        training_round = self.training_round(server_round)
        missing = missing_clients(sent, good, self.clients.client_of)
        if missing:  # failed or silent: the round goes on without them where allowed
            self.failures[training_round] = missing
        if self.min_reply_fraction is not None:
            check_replies(
                sent,
                good,
                bad,
                f"{self.phase} round {training_round}",
                self.min_reply_fraction,
                lambda node: f"client {self.clients.client_of(node)}",
            )
        start = self._round_start.pop(server_round)
        if good:
            validate_message_reply_consistency(
                [r.content for r in good], self.weighted_by_key, check_arrayrecord=True
            )
        # Sorted, so the floating-point sum does not depend on reply arrival order.
        parsed = sorted((self._parse(r) for r in good), key=lambda r: r.client_id)
        self._check_contract(parsed)
        sampled = [self.clients.client_of(m.metadata.dst_node_id) for m in sent]
        arrays, metrics = self.aggregate(server_round, start, parsed)
        broken = non_finite(arrays)
        if broken:
            raise DivergedError(
                f"the global model has non-finite weights after {self.phase} round "
                f"{training_round} (in {', '.join(broken[:3])}): training diverged; lower "
                "the learning rate, or check the clients' data for NaN"
            )
        self.record_round(server_round, start, parsed, sampled, arrays)
        epochs = [r.epochs for r in parsed]
        self.cost.add_round(
            epochs=math.nan if None in epochs else sum(e for e in epochs if e is not None),
            steps=sum(r.steps or 0 for r in parsed),
            messages=2 * len(sent),
        )
        return to_record(arrays), metrics

    def record_round(
        self,
        server_round: int,
        start: Arrays,
        replies: list[ClientReply],
        sampled: list[int],
        aggregated: Arrays,
    ) -> None:
        """Put the round into the history (updates against the round's *start*), and
        check that the new model is the start plus the weighted mean of the updates."""
        if self.history is None:
            return
        updates = {r.client_id: subtract(r.weights, start) for r in replies}
        counts = {r.client_id: r.num_examples for r in replies}
        self.history.record(self.training_round(server_round), start, updates, counts, sampled)
        if replies and self._weighted_mean:
            self._weighted_mean = _moved_by_weighted_mean(start, updates, counts, aggregated)

    def _parse(self, reply: Message) -> ClientReply:
        node = reply.metadata.src_node_id
        try:
            (weights,) = reply.content.array_records.values()
            (metrics,) = reply.content.metric_records.values()
            num_examples = int(metrics[self.weighted_by_key])
        except (KeyError, ValueError, TypeError) as err:
            client = self.clients.client_of(node)
            raise FederationError(
                f"client {client} sent a train reply without one ArrayRecord and one "
                f"MetricRecord holding {self.weighted_by_key!r}: {err}"
            ) from err
        client = self._client_of_reply(node, metrics, num_examples)
        return ClientReply(
            client_id=client,
            weights=from_record(weights),
            num_examples=num_examples,
            content=reply.content,
            node_id=node,
            epochs=_number(metrics, contract.EPOCHS),
            steps=None if (s := _number(metrics, "steps")) is None else int(s),
            loss=_number(metrics, "train-loss"),
            honours_contract=contract.HONOURED in metrics,
            serves_ascent=contract.ASCENT in metrics,
        )

    def _client_of_reply(self, node: int, metrics: Mapping[str, Any], num_examples: int) -> int:
        reported = _number(metrics, CLIENT_ID)
        if not self.clients.learning:
            client = self.clients.client_of(node)  # the identity the server trusts
            if reported is not None and int(reported) != client:
                log.warning("node of client %d reported client id %d", client, int(reported))
        elif reported is not None:
            client = int(reported)
            self.clients.learn(node, client, "partition-id", num_examples)
        else:
            client = node
            self.clients.learn(node, client, "node-id", num_examples)
        return client

    def _check_contract(self, replies: list[ClientReply]) -> None:
        for r in replies:
            known = self._capabilities.setdefault(
                r.client_id, {"honours_contract": True, "serves_ascent": True}
            )
            known["honours_contract"] &= r.honours_contract
            known["serves_ascent"] &= r.serves_ascent
            if self._asked_more.get(r.node_id) and not r.honours_contract:
                raise ContractError(
                    f"client {r.client_id} was asked to {self.phase} with a part of its "
                    "epochs or without some records, and did not say it did: add "
                    "fedunlearn.UnlearningContract to its train handler "
                    "(docs/client-contract.md)"
                )

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
            targets = self._targets([m.metadata.dst_node_id for m in chosen])
        messages = self.make_messages(server_round, arrays, config, targets, MessageType.EVALUATE)
        self._sent[("evaluate", server_round)] = messages
        return messages

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        sent = self._sent.pop(("evaluate", server_round), [])
        replies = list(replies)
        good = [r for r in replies if not r.has_error()]
        if self.min_reply_fraction is not None:
            check_replies(
                sent,
                good,
                [r for r in replies if r.has_error()],
                f"{self.phase} evaluation round {self.training_round(server_round)}",
                self.min_reply_fraction,
                lambda node: f"client {self.clients.client_of(node)}",
            )
        return super().aggregate_evaluate(server_round, good)  # type: ignore[misc]


def _as_reply(reply: ClientReply) -> Message:
    """A reply as the wrapped strategy's aggregation reads it (only its content)."""
    return Message(reply.content, dst_node_id=0, message_type=MessageType.TRAIN)


def _moved_by_weighted_mean(
    start: Arrays,
    updates: Mapping[int, Arrays],
    counts: Mapping[int, int],
    aggregated: Arrays,
) -> bool:
    """Whether ``aggregated`` is ``start`` plus the example-weighted mean of ``updates``
    (to float32 rounding)."""
    total = sum(counts.values())
    if total <= 0:
        return False
    for key, base in start.items():
        if not np.issubdtype(np.asarray(base).dtype, np.floating):
            continue
        mean = sum(np.asarray(u[key], np.float64) * (counts[c] / total) for c, u in updates.items())
        expected = np.asarray(base, np.float64) + mean
        scale = 1e-4 * (1.0 + float(np.max(np.abs(expected))))
        if float(np.max(np.abs(np.asarray(aggregated[key], np.float64) - expected))) > scale:
            return False
    return True


def round_summary(contents: list[RecordDict], weighted_by_key: str) -> MetricRecord:
    """A round's training metrics: the example-weighted ``train-loss``, how many
    clients trained and their summed ``epochs`` (NaN where a client did not report it)."""
    metrics = [next(iter(c.metric_records.values())) for c in contents]
    counts = [float(m[weighted_by_key]) for m in metrics]
    losses = [_number(m, "train-loss") for m in metrics]
    epochs = [_number(m, contract.EPOCHS) for m in metrics]
    loss = (
        math.nan
        if None in losses
        else sum(v * n for v, n in zip(losses, counts, strict=True)) / (sum(counts) or 1)  # type: ignore[operator]
    )
    return MetricRecord(
        {
            "train-loss": loss,
            "clients": len(contents),
            "client-epochs": math.nan if None in epochs else sum(epochs),  # type: ignore[arg-type]
        }
    )


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or (
        isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value)
    )


class RecordingFedAvg(RecordingMixin, FedAvg):
    """Flower's ``FedAvg``, keeping the update history (a drop-in replacement).

    Takes every argument of ``flwr.serverapp.strategy.FedAvg`` (``fraction_train``,
    ``fraction_evaluate``, ``min_train_nodes``, ``weighted_by_key``, ...) and trains as
    it does, plus the keyword arguments of :class:`RecordingMixin` (``delta_t``,
    ``history``, ``seed``, ...). ``strategy.history`` holds what was kept.

    Example, in a ServerApp's ``main(grid, context)``::

        strategy = RecordingFedAvg(fraction_evaluate=0.5, delta_t=2)
        result = strategy.start(grid=grid, initial_arrays=arrays, num_rounds=10,
                                train_config=ConfigRecord({"lr": 0.01}))
        outcome = unlearn(grid, strategy, forget=[0], method="federaser")
    """


class RecordingFedProx(RecordingMixin, FedProx):
    """Flower's ``FedProx`` keeping the update history (its aggregation is FedAvg's, so
    every method can unlearn from it)."""
