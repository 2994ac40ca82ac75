"""The sections of the experiment config, one frozen dataclass each.

Every field says its default, its meaning and what it allows (see
:func:`~fedunlearn.config.options.option`); ``fedunlearn config`` prints them all.
``[data]`` is in :mod:`.dataset`; the threat model (``[attack]``, ``[privacy]``,
``[defense]``, ``[release]``) in :mod:`.threats`. Options of a method or a role are not
here: the method or role declares them, and its sub-table (``[unlearning.<method>]``,
``[roles.<role>]``) is checked against it when the experiment's plugins load.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fedunlearn.config.options import option

TableEntry = tuple[str, Any, Any] | Literal[False] | None
"""What a section's ``table_entry`` returns: (field, key, value) for an entry it takes,
False for one it refused (a problem was recorded), None for a key it does not know."""


def sub_table(value: Mapping[str, Any]) -> dict[str, Any]:
    """A plugin's option table; flat run configs carry lists as ``"[a, b]"`` strings."""
    options: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, str):
            with contextlib.suppress(json.JSONDecodeError):
                item = json.loads(item) if item.strip().startswith("[") else item
        options[str(key)] = item
    return options


@dataclass(frozen=True)
class FederationConfig:
    """``[federation]``: the clients and how the server talks to them."""

    num_clients: int = option(10, "number of simulated clients", ge=2)
    fraction_train: float = option(1.0, "share of clients sampled per training round", gt=0, le=1)
    min_train_clients: int = option(2, "at least this many clients per training round", ge=1)
    fraction_evaluate: float = option(
        0.0, "share of clients that evaluate the global model each round", ge=0, le=1
    )
    min_reply_fraction: float = option(
        1.0, "a round fails unless at least this share of sampled clients reply", gt=0, le=1
    )
    timeout: float = option(600.0, "seconds to wait for replies in one round", gt=0)
    connect_timeout: float = option(120.0, "seconds to wait for all clients to connect", gt=0)


@dataclass(frozen=True)
class SimulationConfig:
    """``[simulation]``: where the clients run when simulated."""

    backend: str = option(
        "threads",
        "'ray': Flower's simulation engine, one Ray actor per client_cpus (several "
        "machines with RAY_ADDRESS); 'threads': the clients in this process, as many "
        "at once as client_cpus fit in its cores; 'inline': the clients in this "
        "process one after another (for debugging and fast tests)",
        choices=("ray", "threads", "inline"),
    )
    client_cpus: float = option(
        1.0, "CPUs per client: Ray actors or client threads at once, torch threads each", gt=0
    )


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the network trained by the federation."""

    name: str = option("cnn", "'logreg', 'mlp', 'cnn' or a dotted path to a factory")
    hidden: int = option(64, "hidden width", ge=1)


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: federated training (also used by retraining)."""

    strategy: str = option("fedavg", "server strategy that trains and keeps history")
    rounds: int = option(20, "federated rounds", ge=1)
    local_epochs: float = option(2.0, "local epochs per round (fractions allowed)", gt=0)
    batch_size: int = option(32, "local minibatch size", ge=1)
    learning_rate: float = option(0.05, "local SGD learning rate", gt=0)
    momentum: float = option(0.9, "local SGD momentum (fresh each round)", ge=0, le=1)
    weight_decay: float = option(0.0, "local SGD weight decay", ge=0)


@dataclass(frozen=True)
class HistoryConfig:
    """``[history]``: which rounds the server keeps, and where."""

    delta_t: int = option(2, "keep rounds 1, 1 + delta_t, 1 + 2 delta_t, ...", ge=1)
    storage: str = option("memory", "where the history lives", choices=("memory", "disk"))
    path: str = option("", "folder of a disk history (default: <run folder>/history)")
    precision: str = option(
        "full",
        "dtype the client updates are kept in: 'full' (the model's own) or 'float16' "
        "(half the bytes of float32; methods read them back in the model's dtypes)",
        choices=("full", "float16"),
    )
    compress: bool = option(False, "disk: deflate each round's file (smaller, slower)")

    def problems(self) -> list[str]:
        """What is wrong with these keys together (empty when nothing is)."""
        if self.compress and self.storage != "disk":
            return ["history.compress = true needs history.storage = 'disk'"]
        return []


@dataclass(frozen=True)
class CanaryConfig:
    """``[canary]``: a backdoor planted in one client's data to measure forgetting."""

    enabled: bool = option(True, "plant the canary")
    client: int = option(0, "client whose data carries the canary", ge=0)
    fraction: float = option(0.5, "share of that client's examples poisoned", gt=0, le=1)
    target_class: int = option(0, "class the trigger maps to", ge=0)
    trigger_size: int = option(3, "side of the square pixel trigger", ge=1)
    memorization: int = option(
        50,
        "noise records with random labels added to that client's data: fit only by "
        "memorising, they make membership inference measurable",
        ge=0,
    )
    inclusion_seed: int = option(
        -1,
        "which of the 2 * memorization canaries drawn are planted (the rest are the "
        "never-trained twins): -1 the first half; >= 0 each with probability 1/2, "
        "seeded by this (reference federations of [audit] set it)",
        ge=-1,
    )


@dataclass(frozen=True)
class UnlearningConfig:
    """``[unlearning]``: who asks to be forgotten, and how the server forgets.

    Options of a method go in a sub-table named after it, e.g. ``[unlearning.federaser]``.
    """

    requesters: list[int] = option([0], "clients that ask to be forgotten after training")
    scope: str = option(
        "client",
        "what requesters ask to forget: 'client' (all their data), 'canary' (their "
        "canary records), 'random' (a random record_fraction of their records)",
        choices=("client", "canary", "random"),
    )
    record_fraction: float = option(
        0.1, "share of records asked for when scope = 'random'", gt=0, le=1
    )
    sequential: bool = option(
        False,
        "serve accepted requests one after another, each from the model the previous one "
        "left (audited after each), instead of all at once",
    )
    methods: list[str] = option(
        ["federaser"], "unlearning methods (aliases or dotted paths); 'all' for every one"
    )
    reference: str = option("retrain", "exact reference every method is audited against")
    options: dict[str, dict[str, Any]] = option(
        {}, "options of a method, in [unlearning.<method>]", table=True
    )

    def options_for(self, method: str) -> dict[str, Any]:
        """Options given for ``method`` in ``[unlearning.<method>]`` (empty if none)."""
        return dict(self.options.get(method, {}))

    @classmethod
    def table_entry(cls, key: str, value: Any, problems: list[str]) -> TableEntry:
        """``[unlearning.<method>]`` sub-tables hold a method's options."""
        if not isinstance(value, Mapping):
            return None
        return "options", str(key), sub_table(value)


@dataclass(frozen=True)
class RolesConfig:
    """``[roles]``: the role of each client, ``default`` for those not listed, and each
    role's options in a sub-table named after it.

    ``[roles] default = "honest"`` and ``"3" = "my_lab.roles:Spy"`` give client 3 a
    custom role; ``[roles.malicious-unlearner] behaviour = "forge"`` sets an option of
    every client with that role (the role's ``Options`` say which exist).
    """

    default: str = option("honest", "role of clients not listed")
    clients: dict[int, str] = option({}, 'role by client id: "3" = "<role>"', table=True)
    options: dict[str, dict[str, Any]] = option(
        {}, "options of a role, in [roles.<role>]", table=True
    )

    def role_of(self, client: int) -> str:
        """The role name of ``client``."""
        return self.clients.get(client, self.default)

    def options_for(self, role: str) -> dict[str, Any]:
        """Options given for ``role`` in ``[roles.<role>]`` (empty if none)."""
        return dict(self.options.get(role, {}))

    @property
    def in_use(self) -> list[str]:
        """Every role some client has, the default first."""
        return list(dict.fromkeys([self.default, *self.clients.values()]))

    @classmethod
    def table_entry(cls, key: str, value: Any, problems: list[str]) -> TableEntry:
        """``"3" = "<role>"`` entries and ``[roles.<role>]`` option tables."""
        if isinstance(value, Mapping):
            return "options", str(key), sub_table(value)
        if not str(key).isdigit():
            return None
        if not isinstance(value, str):
            problems.append(f"roles.{key} must be a role name, got {value!r}")
            return False
        return "clients", int(key), value


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: where results go."""

    dir: str = option("results", "parent folder of run folders")
    run_dir: str = option("", "exact run folder (default: <dir>/<name>-seed<seed>-<time>)")
    figures: bool = option(True, "draw matplotlib figures")
    verbose: bool = option(False, "show Flower's own log lines")
