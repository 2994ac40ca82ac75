"""The interface every unlearning method implements.

A method receives an :class:`UnlearningJob` (the server's history, the clients to
forget, the federation to talk to) and returns an :class:`UnlearningOutcome` (the
unlearned model and what it cost). Methods live under ``strategies/``, one module
each, and are found by alias or dotted path (see :mod:`fedunlearn.plugins`).

A minimal method, selected with ``[unlearning] methods = ["my_lab.methods:KeepOriginal"]``::

    from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome

    class KeepOriginal(UnlearningMethod):
        '''Forgets nothing: the original model (a lower bound).'''

        name = "keep-original"

        def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
            return UnlearningOutcome(arrays=job.original)

Options come from the config table ``[unlearning.<name>]`` and are passed to the
constructor as keyword arguments; validate them there and raise ``ValueError`` naming
the option.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result
from torch import nn

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.federation.aggregation import WEIGHTED_MEAN
from fedunlearn.federation.contract import ContractError
from fedunlearn.federation.cost import Cost
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.federation.sampling import SamplingPlan
from fedunlearn.federation.trainer import EvaluateFn, Trainer, TrainerFactory
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays, from_record, to_record
from fedunlearn.plugins import PluginError, load_plugin
from fedunlearn.unlearning.requests import ForgetSet


@dataclass(frozen=True)
class UnlearningJob:
    """Everything an unlearning method may use.

    Attributes
    ----------
    grid : Grid
        Flower's grid, to send messages to clients.
    registry : ClientRegistry
        Stable client ids and their nodes.
    history : UpdateHistory
        What the server kept while training (the original training's history).
    forget : ForgetSet
        Everything that must be forgotten once this job is done: whole clients
        (``forget.clients``) and records of other clients (``forget.records``).
        Methods that rebuild the model from the history exclude all of it.
    new : ForgetSet
        What this job adds to what earlier jobs forgot (the same as ``forget`` unless
        requests are served one after another). Methods that edit ``original`` remove
        only this.
    original : Arrays
        The model to unlearn from: the trained global model, or the model an earlier
        unlearning job of the same method left.
    instruction : TrainInstruction
        Local training hyperparameters used in training (``server_round`` unused).
    rounds : int
        Number of training rounds.
    sampling : SamplingPlan
        Client sampling used in training.
    seed : int
        The experiment seed.
    trainer : TrainerFactory
        Builds the training strategy (a ``RecordingFedAvg`` by default), for methods
        that run federated rounds; build one with :meth:`make_trainer`.
    new_model : callable
        Returns a fresh torch model of the experiment's architecture (for server-side
        computation such as distillation).
    server_data : np.ndarray
        Unlabelled inputs the server holds (may be empty; ``data.server_fraction``).
    evaluate_fn : callable, optional
        Server-side evaluation ``(round, arrays) -> MetricRecord`` for progress and
        per-round metrics; pass it to ``Strategy.start``.
    """

    grid: Grid
    registry: ClientRegistry
    history: UpdateHistory
    forget: ForgetSet
    original: Arrays
    instruction: TrainInstruction | None
    rounds: int
    sampling: SamplingPlan
    seed: int | None
    trainer: TrainerFactory
    new: ForgetSet | None = None
    new_model: Callable[[], nn.Module] | None = None
    server_data: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.float32))
    evaluate_fn: EvaluateFn | None = None

    def __post_init__(self) -> None:
        if self.new is None:
            object.__setattr__(self, "new", self.forget)

    @property
    def initial(self) -> Arrays:
        """The model training started from."""
        return self.history.initial_model

    @property
    def remaining(self) -> list[int]:
        """Clients that stay (possibly without some records)."""
        return [c for c in self.registry.client_ids if c not in self.forget.clients]

    def make_trainer(
        self,
        *,
        phase: str,
        history: UpdateHistory | None = None,
        epochs_scale: float = 1.0,
        **kwargs: Any,
    ) -> Trainer:
        """A training strategy that never samples wholly forgotten clients and tells
        the others which of their records to leave out.

        It samples like training did (same seed, same rule), so retraining sees the
        same clients as training minus the forgotten ones. ``epochs_scale`` asks
        clients for a fraction of their usual local epochs; ``strategy_class`` (in
        ``kwargs``) gives a method's own strategy class, other keyword arguments go to
        it (see :class:`~fedunlearn.federation.trainer.TrainerFactory`).
        """
        instruction = None
        if self.instruction is not None:
            epochs = self.instruction.epochs * epochs_scale
            instruction = replace(self.instruction, phase=phase, epochs=epochs)
        arguments: dict[str, Any] = {
            "registry": self.registry,
            "instruction": instruction,
            "history": history,
            "sampling": self.sampling,
            "seed": self.seed,
            "exclude": self.forget.clients,
            "forget_records": self.forget.record_map,
            "phase": phase,
            "epochs_scale": epochs_scale,
        }
        return self.trainer(**{**arguments, **kwargs})


@dataclass
class UnlearningOutcome:
    """What a method produced.

    ``round_metrics`` holds client-side metrics of each round the method ran (see
    :func:`round_metrics`; the harness adds its own server-side evaluation);
    ``details`` anything method-specific worth reporting.
    """

    arrays: Arrays
    cost: Cost = field(default_factory=Cost)
    round_metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def run_rounds(
    job: UnlearningJob,
    strategy: Trainer,
    start: Arrays,
    num_rounds: int,
    details: dict[str, Any] | None = None,
) -> UnlearningOutcome:
    """Run a Flower strategy (one with a ``cost``, such as ``job.make_trainer(...)``)
    from ``start`` for ``num_rounds`` rounds with the job's timeout and per-round
    evaluation, and package its result, cost and client-side metrics."""
    started = time.perf_counter()
    result = strategy.start(
        job.grid,
        to_record(start),
        num_rounds=num_rounds,
        timeout=job.sampling.timeout,
        evaluate_fn=job.evaluate_fn,
    )
    strategy.cost.wall_seconds = time.perf_counter() - started
    details = dict(details or {})
    missing = getattr(strategy, "failures", None)
    if missing:  # clients that failed or fell silent: the rounds went on without them
        details["missing_clients"] = {str(r): list(c) for r, c in sorted(missing.items())}
    return UnlearningOutcome(
        arrays=from_record(result.arrays),
        cost=strategy.cost,
        round_metrics=round_metrics(result),
        details=details,
    )


def round_metrics(result: Result) -> dict[int, dict[str, float]]:
    """Client-side metrics per round from a Flower ``Result``: the aggregated training
    metrics (``train_loss``, ``clients``, ``client_epochs``) and, when clients
    evaluated, ``client_loss`` and ``client_accuracy``."""
    out: dict[int, dict[str, float]] = {}
    for server_round, metrics in result.train_metrics_clientapp.items():
        out.setdefault(server_round, {}).update(
            {k.replace("-", "_"): float(v) for k, v in metrics.items()}
        )
    for server_round, metrics in result.evaluate_metrics_clientapp.items():
        out.setdefault(server_round, {}).update(
            {f"client_{k.replace('-', '_')}": float(v) for k, v in metrics.items()}
        )
    return out


class UnlearningMethod(ABC):
    """Base class of unlearning methods.

    Class attributes
    ----------------
    name : str
        Short name used in reports.
    exact : bool
        True when the result equals retraining from scratch (given seeded sampling).
    supports_records : bool
        True when the method can forget some of a client's records; methods that
        cannot are refused such requests with a clear error.
    central_dp : bool
        True when every client contribution it uses reaches the server through the
        FedAvg rounds of ``job.make_trainer`` (which central DP wraps); False when it
        builds on stored updates or other un-noised client work, so central DP gives
        its model no bound (its epsilon is reported as infinite).
    private_client_work : bool
        False when a client computes on its data outside DP-SGD (PGA's ascent): under
        local DP its model then has no bound either.
    """

    name: ClassVar[str] = ""
    exact: ClassVar[bool] = False
    supports_records: ClassVar[bool] = False
    central_dp: ClassVar[bool] = False
    private_client_work: ClassVar[bool] = True
    phase: ClassVar[str | None] = None
    """The training phase its client rounds run under (``instruction.phase``), or None
    when clients do not train; DP clients account each phase separately."""
    needs_weighted_mean: ClassVar[bool] = False
    """True when it rebuilds or edits the model from stored updates, assuming every
    global model moved by their weighted mean (not so under a server optimizer)."""
    trains_clients: ClassVar[bool] = True
    """False for server-only methods (no client computes anything)."""

    @abstractmethod
    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        """Produce the unlearned global model."""

    def expected_rounds(self, job: UnlearningJob) -> int:
        """Rounds (or steps) this method will report, for progress bars."""
        return job.rounds

    def history_bytes(self, history: UpdateHistory) -> int:
        """Bytes of history the server must keep for this method (reported next to its
        audit). By default the whole history."""
        return history.nbytes

    def check(self, config: ExperimentConfig) -> list[str]:
        """Problems with using this method under ``config`` (checked before the run
        starts); empty when fine."""
        return []

    def history_problems(self, history: UpdateHistory) -> list[str]:
        """Problems with unlearning from ``history`` (what it kept, how it was trained);
        empty when fine."""
        if self.needs_weighted_mean and history.aggregation not in (WEIGHTED_MEAN, "unknown"):
            return [
                f"{self.name} rebuilds the model from stored updates, assuming each global "
                "model moved by their weighted mean; this history's training used "
                f"{history.aggregation}. Use retrain (or finetune)."
            ]
        return []

    def client_needs(self, job: UnlearningJob) -> dict[int, set[str]]:
        """What clients must have said they honour (see
        :mod:`fedunlearn.federation.contract`), by client: ``honours_contract`` to train
        a part of their epochs or without some records, ``serves_ascent`` for gradient
        ascent. By default: the owners of records to forget, when clients train."""
        if not self.trains_clients:
            return {}
        return {c: {"honours_contract"} for c in job.forget.record_map}

    given_options: dict[str, Any] | None = None
    """The constructor arguments, defaults filled in, when built from a config."""

    def options(self) -> dict[str, Any]:
        """The options this instance was built with (for the results folder, and what
        makes two method runs the same run): the constructor arguments it was given, or
        else its attributes named after them."""
        if self.given_options is not None:
            return dict(self.given_options)
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self" and hasattr(self, k)}

    def certified_privacy(self) -> tuple[float, float] | None:
        """The (epsilon, delta) this method certifies for releasing its unlearned model
        (its own guarantee, e.g. FedRecovery's Gaussian mechanism), or None when it
        certifies none (the default). The one-run DP audit of the unlearning release
        sets its bound next to this epsilon."""
        return None


NEEDS_HELP = {
    "honours_contract": (
        "to train a part of its epochs or leave records out: read the round's "
        "fedunlearn.UnlearningContract in its train handler and add contract.reply(...) "
        "to its metrics"
    ),
    "serves_ascent": (
        "to unlearn its own data by gradient ascent: a @app.train('ascent') handler, which "
        "fedunlearn's own ClientApp has and a plain Flower app does not"
    ),
}


def run_method(method: UnlearningMethod, job: UnlearningJob) -> UnlearningOutcome:
    """Run ``method`` on ``job`` after checking the history and the clients can serve
    it; ContractError (naming every client and what it lacks) or ValueError if not."""
    problems = method.history_problems(job.history)
    if problems:
        raise ValueError("; ".join(problems))
    known = job.history.meta.get("clients")
    if known is not None:  # what each client said while training
        lacking: dict[str, list[int]] = {}
        for client, needs in sorted(method.client_needs(job).items()):
            for need in needs:
                if not known.get(str(client), {}).get(need, False):
                    lacking.setdefault(need, []).append(client)
        if lacking:
            raise ContractError(
                f"{method.name or type(method).__name__} cannot run: "
                + "; ".join(
                    f"client{'s' if len(c) > 1 else ''} {', '.join(map(str, c))} "
                    f"need{'' if len(c) > 1 else 's'} {NEEDS_HELP[need]}"
                    for need, c in sorted(lacking.items())
                )
                + " (docs/client-contract.md)"
            )
    return method.unlearn(job)


def make_method(name: str, options: Mapping[str, Any] | None = None) -> UnlearningMethod:
    """Load method ``name`` and build it with ``options``; ConfigError on any problem.

    Unknown options are named next to the ones the method accepts.
    """
    where = f"unlearning.{name}" if name.isidentifier() else f'unlearning."{name}"'
    try:
        cls = load_plugin("method", name)
    except PluginError as err:
        raise ConfigError([str(err)]) from err
    if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
        raise ConfigError([f"{name!r} is {cls!r}, not an UnlearningMethod subclass"])
    options = dict(options or {})
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p != "self"]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in accepted]
    if unknown and not takes_any:
        raise ConfigError(
            [
                f"[{where}] has unknown option(s) {unknown}; {name} accepts "
                f"{', '.join(a for a in accepted if not a.startswith('*')) or 'no options'}"
            ]
        )
    try:
        method = cls(**options)
    except (TypeError, ValueError) as err:
        raise ConfigError([f"[{where}]: {err}"]) from err
    signature = inspect.signature(cls.__init__)
    bound = signature.bind(method, **options)
    bound.apply_defaults()
    named = {
        name
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"
    }
    given = {k: v for k, v in bound.arguments.items() if k in named}
    for name, p in signature.parameters.items():
        if p.kind is p.VAR_KEYWORD:  # options a method takes as **kwargs count too
            given.update(bound.arguments.get(name, {}))
    method.given_options = given
    return method
