"""Client roles: what a client does when the server sends it a message.

:class:`ClientRole` is an honest participant: it trains as instructed, evaluates, and
asks for nothing. A role changes behaviour by overriding a hook:

* :meth:`ClientRole.fit`: local training for a ``train`` message;
* :meth:`ClientRole.evaluate`: metrics for an ``evaluate`` message;
* :meth:`ClientRole.unlearning_requests`: what to answer the request-gathering query.

Roles live under ``clients/`` (one module each) and are chosen per client in the
config's ``[roles]`` table, by alias or dotted path::

    from fedunlearn.roles.role import ClientRole
    from fedunlearn.unlearning.requests import UnlearningRequest

    class Quitter(ClientRole):
        '''Trains honestly, then asks to be forgotten.'''

        def unlearning_requests(self):
            return [UnlearningRequest(target_client=self.client_id)]

A role is built afresh for every message; state that must last across rounds goes in
``self.setup.state`` (Flower's ``context.state``), not in attributes.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from flwr.app import ArrayRecord, RecordDict
from torch import nn

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.defenses.commitment import client_secret, commit, prove
from fedunlearn.defenses.privacy import (
    DPTraining,
    load_history,
    noise_for_target,
    save_history,
    spent,
    train_privately,
)
from fedunlearn.federation.protocol import AscentInstruction, TrainInstruction, TrainReport
from fedunlearn.federation.sampling import participations
from fedunlearn.learning.arrays import Arrays, from_record, load_arrays, model_to_arrays, to_record
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import (
    LocalTrainingResult,
    evaluate,
    projected_gradient_ascent,
    train_locally,
)
from fedunlearn.plugins import load_plugin
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import UnlearningRequest

LAST_MODEL = "last-local-model"
"""Key in ``context.state`` of the client's last local model from training."""


@dataclass
class ClientSetup:
    """What a role is given: its id, its data, the experiment, its persistent state."""

    client_id: int
    data: ArrayDataset
    info: DatasetInfo
    config: ExperimentConfig
    state: MutableMapping[str, Any]
    canary_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Record ids of this client's canary records (what it knows it planted)."""


class ClientRole:
    """An honest federated participant. Subclass it to build other roles."""

    name: ClassVar[str] = "base"

    def __init__(self, setup: ClientSetup) -> None:
        self.setup = setup

    @property
    def client_id(self) -> int:
        return self.setup.client_id

    @property
    def config(self) -> ExperimentConfig:
        return self.setup.config

    def new_model(self) -> nn.Module:
        """A fresh model of the experiment's architecture."""
        m = self.config.model
        return build_model(
            m.name,
            self.setup.info.input_shape,
            self.setup.info.num_classes,
            m.hidden,
            seed=self.config.seed,
        )

    def training_data(self, instruction: TrainInstruction) -> ArrayDataset:
        """The data this client trains on for ``instruction``: all of it, except records
        the server says were forgotten at this client's request."""
        if instruction.exclude_records:
            return self.setup.data.without_ids(np.asarray(instruction.exclude_records))
        return self.setup.data

    def fit(self, arrays: Arrays, instruction: TrainInstruction) -> tuple[Arrays, TrainReport]:
        """Train locally from the global ``arrays``; return new weights and a report.

        Local randomness is seeded by (instruction seed, round, client id), so the same
        client in the same round of training and of retraining draws the same batches.
        """
        model = self.new_model()
        load_arrays(model, arrays)
        data = self.training_data(instruction)
        seed = derive_seed(instruction.seed, instruction.server_round, self.client_id)
        if self.config.privacy.mode == "local":
            result = self.fit_privately(model, data, instruction, seed % 2**62)
        else:
            result = train_locally(
                model,
                data,
                epochs=instruction.epochs,
                batch_size=instruction.batch_size,
                learning_rate=instruction.learning_rate,
                momentum=instruction.momentum,
                weight_decay=instruction.weight_decay,
                seed=seed,
            )
        report = TrainReport(len(data), self.client_id, result.epochs, result.steps, result.loss)
        weights = model_to_arrays(model)
        if instruction.phase == "train":  # kept for unlearning by gradient ascent
            self.setup.state[LAST_MODEL] = to_record(weights)
        return weights, report

    def noise_multiplier(self) -> float:
        """This client's DP-SGD noise: the configured one, or the one that makes its
        planned training spend ``privacy.target_epsilon``."""
        p, t = self.config.privacy, self.config.training
        if not p.target_epsilon:
            return p.noise_multiplier
        n = len(self.setup.data)
        rate = min(1.0, t.batch_size / n)
        steps_per_round = max(1, math.ceil(t.local_epochs * math.ceil(1 / rate)))
        fed = self.config.federation
        # The server's sampling is seeded: the client knows the rounds it will train in.
        rounds = participations(
            self.client_id,
            fed.num_clients,
            fed.fraction_train,
            fed.min_train_clients,
            self.config.seed,
            t.rounds,
        )
        return noise_for_target(p.target_epsilon, p.delta, rate, max(1, rounds) * steps_per_round)

    def fit_privately(
        self, model: nn.Module, data: ArrayDataset, instruction: TrainInstruction, seed: int
    ) -> LocalTrainingResult:
        """One round of DP-SGD; the accountant history of this phase grows in the
        client's state (see :mod:`fedunlearn.privacy`)."""
        p = self.config.privacy
        history = load_history(self.setup.state, instruction.phase)
        result, history = train_privately(
            model,
            data,
            epochs=instruction.epochs,
            batch_size=instruction.batch_size,
            learning_rate=instruction.learning_rate,
            momentum=instruction.momentum,
            weight_decay=instruction.weight_decay,
            seed=seed,
            dp=DPTraining(self.noise_multiplier(), p.max_grad_norm),
            history=history,
        )
        save_history(self.setup.state, instruction.phase, history)
        return result

    def privacy_spent(self) -> dict[str, float]:
        """Epsilon this client spent: after training, and with each unlearning phase."""
        return spent(self.setup.state, self.config.privacy.delta)

    def ascend(
        self, arrays: Arrays, instruction: AscentInstruction
    ) -> tuple[Arrays, dict[str, float]]:
        """Unlearn this client's data by projected gradient ascent (Halimi et al. 2022).

        The reference model is the aggregate without this client:
        ``(w - p * w_last) / (1 - p)`` with ``w_last`` its last local model from
        training and ``p`` its share (``instruction.weight``). The ascent starts there
        and stays within ``radius`` of it (by default a third of the mean distance from
        the reference to three freshly initialised models).
        """
        reference = dict(arrays)
        last = self.setup.state.get(LAST_MODEL)
        p = instruction.weight
        data = self.setup.data
        if instruction.records:  # record level: ascend on those records, from the model sent
            data = data.subset(np.flatnonzero(np.isin(data.ids, instruction.records)))
            if len(data) == 0:
                raise ValueError(f"client {self.client_id} holds none of the records to unlearn")
            p = 0.0
        if 0 < p < 1 and isinstance(last, ArrayRecord):
            mine = from_record(last)
            reference = {k: (np.asarray(arrays[k]) - p * mine[k]) / (1 - p) for k in arrays}
        model = self.new_model()
        load_arrays(model, reference)
        anchor = {n: t.detach().clone() for n, t in model.named_parameters()}
        radius = instruction.radius or self.default_radius(model)
        result = projected_gradient_ascent(
            model,
            data,
            anchor,
            radius=radius,
            epochs=instruction.epochs,
            batch_size=instruction.batch_size,
            learning_rate=instruction.learning_rate,
            stop_accuracy=instruction.stop_accuracy,
            seed=derive_seed(instruction.seed, "ascent", self.client_id),
        )
        metrics = {
            "epochs": result.epochs,
            "steps": float(result.steps),
            "accuracy": result.accuracy,
            "radius": radius,
            "distance": result.distance,
            "used-own-model": float(isinstance(last, ArrayRecord) and 0 < p < 1),
            "records": float(len(data)),
        }
        return model_to_arrays(model), metrics

    def default_radius(self, reference: nn.Module, draws: int = 3) -> float:
        """A third of the mean L2 distance from ``reference`` to fresh random models."""
        own = dict(reference.named_parameters())
        distances = []
        for i in range(draws):
            m = self.config.model
            fresh = build_model(
                m.name,
                self.setup.info.input_shape,
                self.setup.info.num_classes,
                m.hidden,
                seed=derive_seed(self.config.seed, "random-model", i),
            )
            distances.append(
                float(
                    sum(
                        ((p.detach() - own[n].detach()) ** 2).sum()
                        for n, p in fresh.named_parameters()
                    ).sqrt()
                )
            )
        return float(np.mean(distances)) / 3.0

    def evaluate(self, arrays: Arrays) -> dict[str, float]:
        """Loss and accuracy of the global model on this client's data."""
        model = self.new_model()
        load_arrays(model, arrays)
        loss, accuracy = evaluate(model, self.setup.data)
        return {"loss": loss, "accuracy": accuracy}

    def unlearning_requests(self) -> list[UnlearningRequest]:
        """Requests to send when the server gathers them (none by default)."""
        return []

    def commitment(self) -> list[bytes]:
        """Digests of the records it holds, sent when it joins (:mod:`fedunlearn.commitment`)."""
        return commit(client_secret(self.setup.state), self.setup.data.ids)

    def request_records(self, record_ids: Sequence[int]) -> UnlearningRequest:
        """A request to forget some of its records, with the proofs that it holds them."""
        ids = tuple(sorted(int(i) for i in record_ids))
        proofs = tuple(prove(client_secret(self.setup.state), ids))
        return UnlearningRequest(self.client_id, ids, proofs)

    def attack(self, content: RecordDict) -> RecordDict:
        """Answer a ``query.attack`` (see :mod:`fedunlearn.leakage`). Only inference
        attackers attack; any other role refuses."""
        raise PermissionError(f"client {self.client_id} ({self.name}) does not attack")

    @classmethod
    def attacks(cls) -> bool:
        """Whether this role answers attack queries."""
        return cls.attack is not ClientRole.attack


@lru_cache(maxsize=32)
def load_role(name: str) -> type[ClientRole]:
    """The role class for an alias (``"honest"``) or dotted path."""
    cls = load_plugin("role", name)
    if not (isinstance(cls, type) and issubclass(cls, ClientRole)):
        raise TypeError(f"role {name!r} is {cls!r}, not a ClientRole subclass")
    return cls
