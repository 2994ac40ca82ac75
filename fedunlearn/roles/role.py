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

A role with options declares them as a frozen dataclass of
:func:`~fedunlearn.config.options.option` fields in ``Options``; the config sets them in
``[roles.<role>]`` and the role reads them as ``self.options``. They are checked, with
:meth:`ClientRole.check`, before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from flwr.app import RecordDict
from torch import nn

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError, parse_options
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.defenses.commitment import client_secret, commit, content_hashes, prove
from fedunlearn.defenses.privacy import (
    DPTraining,
    History,
    load_history,
    noise_for_target,
    opacus_sample_rate,
    phase_noise,
    phases,
    save_history,
    spent,
    steps_per_round,
    train_privately,
)
from fedunlearn.federation.protocol import AscentInstruction, TrainInstruction, TrainReport
from fedunlearn.federation.sampling import participations
from fedunlearn.learning.arrays import Arrays, load_arrays, model_to_arrays, to_record
from fedunlearn.learning.training import (
    LocalTrainingResult,
    evaluate,
    train_locally,
)
from fedunlearn.plugins import load_plugin
from fedunlearn.roles.ascent import ascend_own_data
from fedunlearn.roles.setup import LAST_MODEL, ClientSetup
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import UnlearningRequest


class ClientRole:
    """An honest federated participant. Subclass it to build other roles."""

    name: ClassVar[str] = "base"
    Options: ClassVar[type | None] = None
    """A frozen dataclass of the role's options (None: it takes none)."""

    def __init__(self, setup: ClientSetup) -> None:
        self.setup = setup

    @property
    def options(self) -> Any:
        """The role's options (see ``Options``)."""
        return self.setup.options

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any], where: str) -> Any:
        """The ``Options`` instance for the table ``raw``; ConfigError on any problem."""
        if cls.Options is None:
            if raw:
                raise ConfigError(
                    [f"[{where}] sets {sorted(raw)}, but {cls.__qualname__} takes no options"]
                )
            return None
        return parse_options(cls.Options, where, raw)

    @classmethod
    def check(cls, options: Any, config: ExperimentConfig) -> list[str]:
        """Problems with these options under ``config`` (checked before the run starts,
        like cross-key checks of the config); empty when fine."""
        return []

    @classmethod
    def audit_probes(
        cls, options: Any, test: ArrayDataset, info: DatasetInfo, config: ExperimentConfig
    ) -> dict[str, tuple[ArrayDataset, int]]:
        """Triggered inputs the audit should try on every model, by name, with the class
        they target: a role that plants a backdoor lets the harness measure it (the audit
        reports ``<name>_success_rate``). None by default."""
        return {}

    @property
    def client_id(self) -> int:
        return self.setup.client_id

    @property
    def config(self) -> ExperimentConfig:
        return self.setup.config

    def new_model(self) -> nn.Module:
        """A fresh model of the experiment's architecture."""
        return self.setup.new_model()

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
        """This client's DP-SGD noise: the configured one, or the one with which its
        planned training spends ``privacy.target_epsilon``: the rounds the server's
        seeded sampling gives it, ``training.local_epochs`` of Opacus's Poisson batches
        each, at the rate Opacus samples its data at (see
        :mod:`fedunlearn.defenses.privacy`). Computed afresh on every call;
        :meth:`fit_privately` calls it once per phase."""
        p, t = self.config.privacy, self.config.training
        if not p.target_epsilon:
            return p.noise_multiplier
        n = len(self.setup.data)
        rate = opacus_sample_rate(n, t.batch_size)
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
        steps = max(1, rounds) * steps_per_round(n, t.batch_size, t.local_epochs)
        return noise_for_target(p.target_epsilon, p.delta, rate, steps)

    def fit_privately(
        self, model: nn.Module, data: ArrayDataset, instruction: TrainInstruction, seed: int
    ) -> LocalTrainingResult:
        """One round of DP-SGD; the accountant history of this phase grows in the
        client's state (see :mod:`fedunlearn.defenses.privacy`). Every phase trains at
        the training noise, chosen at the client's first private round and kept."""
        p, state = self.config.privacy, self.setup.state
        noise = phase_noise(
            state,
            instruction.phase,
            lambda: phase_noise(state, "train", self.noise_multiplier),
        )
        history = load_history(state, instruction.phase)
        result, history = train_privately(
            model,
            data,
            epochs=instruction.epochs,
            batch_size=instruction.batch_size,
            learning_rate=instruction.learning_rate,
            momentum=instruction.momentum,
            weight_decay=instruction.weight_decay,
            seed=seed,
            dp=DPTraining(noise, p.max_grad_norm),
            history=history,
        )
        save_history(state, instruction.phase, history)
        return result

    def privacy_spent(self) -> dict[str, float]:
        """Epsilon this client spent: after training, and with each unlearning phase."""
        return spent(self.setup.state, self.config.privacy.delta)

    def privacy_histories(self) -> dict[str, History]:
        """This client's accountant history of each phase it trained privately in: the
        (noise multiplier, sample rate, steps) that :meth:`privacy_spent` accounts."""
        return {phase: load_history(self.setup.state, phase) for phase in phases(self.setup.state)}

    def ascend(
        self, arrays: Arrays, instruction: AscentInstruction
    ) -> tuple[Arrays, dict[str, float]]:
        """Unlearn this client's data by projected gradient ascent (Halimi et al. 2022);
        see :func:`~fedunlearn.roles.ascent.ascend_own_data`."""
        return ascend_own_data(self.setup, arrays, instruction)

    def evaluate(self, arrays: Arrays) -> dict[str, float]:
        """Loss and accuracy of the global model on this client's data."""
        model = self.new_model()
        load_arrays(model, arrays)
        loss, accuracy = evaluate(model, self.setup.data)
        return {"loss": loss, "accuracy": accuracy}

    def unlearning_requests(self) -> list[UnlearningRequest]:
        """Requests to send when the server gathers them (none by default)."""
        return []

    def commitment(self) -> tuple[list[int], list[bytes]]:
        """The ids of the records it holds and their digests, sent when it joins
        (:mod:`fedunlearn.defenses.commitment`)."""
        data = self.setup.data
        contents = content_hashes(data.x, data.y)
        ids = [int(i) for i in data.ids]
        return ids, commit(client_secret(self.setup.state), ids, contents)

    def request_records(self, record_ids: Sequence[int]) -> UnlearningRequest:
        """A request to forget some of its records, with the proofs that it holds them."""
        ids = tuple(sorted(int(i) for i in record_ids))
        data = self.setup.data
        held = dict(zip(data.ids.tolist(), content_hashes(data.x, data.y), strict=True))
        contents = [held.get(i, bytes(32)) for i in ids]  # a record it lacks cannot be proved
        proofs = tuple(prove(client_secret(self.setup.state), ids, contents))
        return UnlearningRequest(self.client_id, ids, proofs)

    def attack(self, content: RecordDict) -> RecordDict:
        """Answer a ``query.attack`` (see :mod:`fedunlearn.evaluation.leakage`). Only inference
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


def role_with_options(config: ExperimentConfig, name: str) -> tuple[type[ClientRole], Any]:
    """The role class ``name`` and its options from ``[roles.<name>]``, validated."""
    cls = load_role(name)
    bare = name.replace("-", "_").isidentifier()  # TOML quotes a dotted path
    where = f"roles.{name}" if bare else f'roles."{name}"'
    return cls, cls.parse_options(config.roles.options_for(name), where)
