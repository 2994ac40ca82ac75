"""Unlearning from your own ServerApp: one call, any method, the exact reference alike.

After training with :class:`~fedunlearn.federation.recording.RecordingFedAvg` (or any
strategy with :class:`~fedunlearn.federation.recording.RecordingMixin`)::

    from fedunlearn import unlearn

    forgotten = unlearn(grid, strategy.history, forget=[0], method="federaser")
    retrained = unlearn(grid, strategy.history, forget=[0], method="retrain")
    forgotten.arrays         # an ArrayRecord, like Flower's result.arrays
    forgotten.cost           # client epochs, rounds, messages, seconds

The method's rounds are ordinary Flower ``train`` rounds, sampled and addressed as
training's were (the history recorded how), carrying the app's own train config plus
what the method asks (see :mod:`fedunlearn.federation.contract`). A method that needs
more of the clients than they said they do while training is refused before it starts,
with what to add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid
from torch import nn

from fedunlearn.federation.cost import Cost
from fedunlearn.federation.recording import RecordingFedAvg, RecordingMixin
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.sampling import FEDAVG_ARGUMENTS, SamplingPlan
from fedunlearn.federation.trainer import EvaluateFn, trainer_factory
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays, from_record, to_record
from fedunlearn.plugins import PluginError, load_object
from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, make_method, run_method
from fedunlearn.unlearning.requests import ForgetSet

Forget = Iterable[int] | Mapping[int, Iterable[int]] | ForgetSet
"""Whole clients (``[0, 3]``), records by client (``{2: [17, 40]}``), or a ForgetSet."""


@dataclass
class UnlearningResult:
    """What :func:`unlearn` produced.

    Attributes
    ----------
    method : str
        The method that ran.
    forget : ForgetSet
        What was forgotten.
    arrays : ArrayRecord
        The unlearned global model (``arrays.to_torch_state_dict()`` loads it).
    cost : Cost
        Client epochs (NaN when clients did not report them), rounds, messages, time.
    details : dict
        What the method reports about itself.
    round_metrics : dict
        Client-side metrics of each round the method ran.
    """

    method: str
    forget: ForgetSet
    arrays: ArrayRecord
    cost: Cost
    details: dict[str, Any] = field(default_factory=dict)
    round_metrics: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def weights(self) -> Arrays:
        """The unlearned model as named NumPy arrays."""
        return from_record(self.arrays)


def forget_set(forget: Forget) -> ForgetSet:
    """``forget`` as a :class:`ForgetSet`."""
    if isinstance(forget, ForgetSet):
        return forget
    if isinstance(forget, Mapping):
        return ForgetSet.of(records={int(c): list(ids) for c, ids in forget.items()})
    return ForgetSet.of(clients=[int(c) for c in forget])


def unlearn(
    grid: Grid,
    history: UpdateHistory,
    forget: Forget,
    method: str | UnlearningMethod = "federaser",
    *,
    options: Mapping[str, Any] | None = None,
    train_config: ConfigRecord | Mapping[str, Any] | None = None,
    strategy: RecordingMixin | None = None,
    original: ArrayRecord | Arrays | None = None,
    timeout: float = 3600.0,
    evaluate_fn: EvaluateFn | None = None,
    model_fn: Callable[[], nn.Module] | None = None,
    server_data: np.ndarray | None = None,
) -> UnlearningResult:
    """Forget clients (or some of their records) from a model trained with history.

    Parameters
    ----------
    grid : Grid
        The ServerApp's grid; the clients training used must still be connected.
    history : UpdateHistory
        What training kept (``strategy.history`` of a recording strategy).
    forget : list of int, dict of int to record ids, or ForgetSet
        Whole clients by their id (the ``partition-id`` they reported, or their node id),
        or records of clients.
    method : str or UnlearningMethod
        A method's alias (``"federaser"``, ``"retrain"``, ``"rollback"``, ...; see
        ``fedunlearn config``), a dotted path ``"my_lab.methods:MyMethod"``, or an instance.
    options : mapping, optional
        The method's options, e.g. ``{"r": 0.5}`` for FedEraser.
    train_config : ConfigRecord or mapping, optional
        The app's own config, sent in every round the method runs; by default the one
        training sent (recorded in the history).
    strategy : RecordingMixin, optional
        The strategy that trained (its class and arguments build the rounds of the
        methods that train as training did); by default the one the history names.
    original : ArrayRecord or arrays, optional
        The model to unlearn from; by default the history's final model.
    timeout : float
        Seconds to wait for the replies of a round.
    evaluate_fn : callable, optional
        Flower's server-side ``evaluate_fn``, called after every round the method runs.
    model_fn : callable, optional
        Returns a fresh model, for methods that compute on the server (``subtract``'s
        distillation).
    server_data : ndarray, optional
        Unlabelled inputs the server holds (distillation).

    Returns
    -------
    UnlearningResult
        The unlearned model, its cost and details.

    Raises
    ------
    ContractError
        The method needs more of some clients than they said they honour.
    ConfigError
        Unknown method or bad options.
    ValueError
        The history cannot serve the method (e.g. rounds it did not keep).
    """
    chosen = method if isinstance(method, UnlearningMethod) else make_method(method, options)
    forgotten = forget_set(forget)
    unknown = sorted((set(forgotten.clients) | set(forgotten.record_map)) - set(history.clients))
    if unknown:
        keyed = sorted({e.get("id_from", "?") for e in history.meta.get("clients", {}).values()})
        raise ValueError(
            f"clients {unknown} never trained in this history; its clients are "
            f"{history.clients} (keyed by {', '.join(keyed) or 'client id'}: a client that "
            "reports a partition-id is keyed by it, any other by its Flower node id)"
        )
    training_class, plan = _training(history, strategy, train_config, timeout)
    start = history.final_model if original is None else _arrays(original)
    history.check_fits(start)
    job = UnlearningJob(
        grid=grid,
        registry=ClientRegistry.learned(history.client_nodes, history.client_examples),
        history=history,
        forget=forgotten,
        original=start,
        instruction=None,
        rounds=history.num_rounds,
        sampling=plan,
        seed=history.meta.get("seed"),
        trainer=trainer_factory(training_class),
        new_model=model_fn,
        server_data=server_data if server_data is not None else np.zeros((0,), np.float32),
        evaluate_fn=evaluate_fn,
    )
    outcome = run_method(chosen, job)
    return UnlearningResult(
        method=chosen.name or type(chosen).__name__,
        forget=forgotten,
        arrays=to_record(outcome.arrays),
        cost=outcome.cost,
        details=outcome.details,
        round_metrics=outcome.round_metrics,
    )


def _arrays(model: ArrayRecord | Arrays) -> Arrays:
    return from_record(model) if isinstance(model, ArrayRecord) else dict(model)


def _training(
    history: UpdateHistory,
    strategy: RecordingMixin | None,
    train_config: ConfigRecord | Mapping[str, Any] | None,
    timeout: float,
) -> tuple[type[RecordingMixin], SamplingPlan]:
    """The training strategy's class and how its rounds sampled and talked to clients."""
    meta = history.meta
    if strategy is not None:
        cls: type[RecordingMixin] = type(strategy)
        extra = {
            k: v
            for k, v in strategy.strategy_kwargs.items()
            if k not in FEDAVG_ARGUMENTS and not k.endswith("_aggr_fn")
        }
    else:
        cls = _strategy_class(meta.get("strategy"))
        extra = dict(meta.get("strategy_kwargs", {}))
    config = meta.get("train_config", {}) if train_config is None else dict(train_config)
    plan = SamplingPlan(
        fraction_train=float(meta.get("fraction_train", 1.0)),
        min_train_clients=int(meta.get("min_train_nodes", 2)),
        fraction_evaluate=float(meta.get("fraction_evaluate", 0.0)),
        min_reply_fraction=None,
        timeout=timeout,
        min_evaluate_clients=int(meta.get("min_evaluate_nodes", 0)),
        min_available_clients=int(meta.get("min_available_nodes", 1)),
        weighted_by_key=str(meta.get("weighted_by_key", "num-examples")),
        arrayrecord_key=str(meta.get("arrayrecord_key", "arrays")),
        configrecord_key=str(meta.get("configrecord_key", "config")),
        train_config=config,
        strategy_kwargs=extra,
    )
    return cls, plan


def _strategy_class(name: object) -> type[RecordingMixin]:
    if not isinstance(name, str):
        return RecordingFedAvg
    try:
        cls = load_object(name, what="training strategy")
    except PluginError as err:
        return _unavailable(
            f"the history was trained with {name}, which cannot be imported here ({err}); "
            "pass the strategy: unlearn(..., strategy=your_strategy)"
        )
    if not (isinstance(cls, type) and issubclass(cls, RecordingMixin)):
        return RecordingFedAvg
    return cls


def _unavailable(reason: str) -> type[RecordingMixin]:
    """A training class that refuses to build, for a method that trains as training
    did (methods with strategies of their own never ask for it)."""

    class Unavailable(RecordingFedAvg):
        @classmethod
        def for_phase(cls, **kwargs: Any) -> Unavailable:
            raise ValueError(reason)

    return Unavailable
