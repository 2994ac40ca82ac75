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

import math
from collections.abc import Callable, Iterable
from typing import Any, Self

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx, Result
from flwr.serverapp.strategy.strategy_utils import validate_message_reply_consistency

from fedunlearn.federation.addressing import StableIdMixin
from fedunlearn.federation.aggregation import (
    WEIGHTED_MEAN,
    DivergedError,
    as_message,
    moved_by_weighted_mean,
    non_finite,
    require_finite,
    round_summary,
)
from fedunlearn.federation.cost import Cost
from fedunlearn.federation.description import training_description
from fedunlearn.federation.phase_strategy import phase_strategy
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.replies import ClientReply, ReplyReader, check_contract
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.history import MemoryHistory, UpdateHistory
from fedunlearn.learning.arrays import Arrays, from_record, subtract, to_record

__all__ = [
    "WEIGHTED_MEAN",
    "ClientReply",
    "DivergedError",
    "RecordingFedAvg",
    "RecordingFedProx",
    "RecordingMixin",
    "non_finite",
    "round_summary",
]


class RecordingMixin(StableIdMixin):
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
    min_available_nodes: int
    weighted_by_key: str
    train_metrics_aggr_fn: Callable[[list[Any], str], MetricRecord]

    def __init__(
        self,
        *args: Any,
        history: UpdateHistory | None = None,
        delta_t: int = 1,
        keep_history: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.history = (
            history if history is not None or not keep_history else MemoryHistory(delta_t)
        )
        self.default_train_config: dict[str, Any] = {}
        """The config ``start`` sends when it is given none (an unlearning phase sends
        the app's own config)."""
        self.default_evaluate_config: dict[str, Any] = {}
        self.cost = Cost()
        self.replies = ReplyReader(self.clients, self.weighted_by_key)
        self._round_start: dict[int, Arrays] = {}
        self._weighted_mean = True

    @classmethod
    def for_phase(
        cls, *, registry: ClientRegistry, sampling: SamplingPlan | None = None, **kwargs: Any
    ) -> Self:
        """The strategy of one phase of unlearning (or of fedunlearn's own training):
        sampling, record keys and the app's config from ``sampling``; every argument of
        :data:`~fedunlearn.federation.trainer.TRAINER_ARGUMENTS`."""
        return phase_strategy(cls, registry=registry, sampling=sampling, **kwargs)

    # ------------------------------------------------------------------ hooks
    def aggregate(
        self, server_round: int, start: Arrays, replies: list[ClientReply]
    ) -> tuple[Arrays, MetricRecord | None]:
        """The next global model and the round's metrics: the wrapped strategy's own
        aggregation (the round's start when no client trained)."""
        if not replies:
            return start, self.summarise(replies)
        arrays, metrics = super().aggregate_train(server_round, [as_message(r) for r in replies])  # type: ignore[misc]
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
            self.history.describe_training(**training_description(self, train_config))
        return result

    def aggregation(self) -> str:
        """``weighted-mean`` if the aggregation is FedAvg's and every recorded round
        checked out; otherwise the strategy whose aggregation is something else."""
        mro = type(self).__mro__
        owner = next(
            c for c in mro[mro.index(RecordingMixin) + 1 :] if "aggregate_train" in c.__dict__
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
            targets = self.targets(m.metadata.dst_node_id for m in sampled)
        else:
            targets = [(c, self.clients.node_of(c)) for c in clients if c not in self.exclude]
        self._round_start[server_round] = start
        return self.make_messages(server_round, arrays, config, targets, MessageType.TRAIN)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        sent = self.sent_nodes(server_round)
        good = self.good_replies("train", server_round, replies)
        start = self._round_start.pop(server_round)
        if good:
            validate_message_reply_consistency(
                [r.content for r in good], self.weighted_by_key, check_arrayrecord=True
            )
        # Sorted, so the floating-point sum does not depend on reply arrival order.
        parsed = sorted((self.replies.read(r) for r in good), key=lambda r: r.client_id)
        check_contract(parsed, self.asked_more, self.phase)
        sampled = [self.clients.client_of(node) for node in sent]  # ids learned from replies
        arrays, metrics = self.aggregate(server_round, start, parsed)
        require_finite(arrays, self.phase, self.training_round(server_round))
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
            self._weighted_mean = moved_by_weighted_mean(start, updates, counts, aggregated)


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
