"""The experiment config: one TOML file describes one run, validated before anything runs.

Example (every key is optional; omitted keys take the defaults below)::

    name = "federaser-vs-retrain"
    seed = 0

    [data]
    dataset = "mnist5k"
    partition = "iid"

    [training]
    rounds = 20

    [unlearning]
    method = "federaser"
    requesters = [0]

    [unlearning.federaser]   # options of the method of the same name
    r = 0.5

Load it with :meth:`ExperimentConfig.from_toml`. Every problem (unknown key, wrong
type, impossible value) is reported at once in a :class:`ConfigError` that names the
key, what was given and what is allowed.

The same config travels to Flower apps as a flat ``run_config`` (``"training.rounds"``
keys, lists as comma-separated strings): see :meth:`ExperimentConfig.to_run_config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedunlearn.data.datasets import BUILTIN_DATASETS
from fedunlearn.data.partition import PARTITION_SCHEMES


class ConfigError(ValueError):
    """The experiment config is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str], source: str = "experiment config") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {source}:\n{lines}")


def _opt(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which dataset, and how it is split over clients."""

    dataset: str = _opt("mnist5k", "dataset name", choices=BUILTIN_DATASETS)
    path: str = _opt("", "file to read when dataset = 'npz'")
    test_fraction: float = _opt(0.2, "share held out as the server's test set", gt=0, le=0.5)
    partition: str = _opt("iid", "how examples are split over clients", choices=PARTITION_SCHEMES)
    alpha: float = _opt(0.5, "Dirichlet concentration (partition = 'dirichlet')", gt=0)
    classes_per_client: int = _opt(2, "classes per client (partition = 'pathological')", ge=1)
    min_partition_size: int = _opt(10, "Dirichlet: minimum examples per client", ge=1)
    server_fraction: float = _opt(
        0.0,
        "share of the training pool the server keeps as unlabelled data (for methods "
        "that distill on the server)",
        ge=0,
        lt=0.9,
    )


@dataclass(frozen=True)
class FederationConfig:
    """``[federation]``: the clients and how the server talks to them."""

    num_clients: int = _opt(10, "number of simulated clients", ge=2)
    fraction_train: float = _opt(1.0, "share of clients sampled per training round", gt=0, le=1)
    min_train_clients: int = _opt(2, "at least this many clients per training round", ge=1)
    fraction_evaluate: float = _opt(
        0.0, "share of clients that evaluate the global model each round", ge=0, le=1
    )
    min_reply_fraction: float = _opt(
        1.0, "a round fails unless at least this share of sampled clients reply", gt=0, le=1
    )
    timeout: float = _opt(600.0, "seconds to wait for replies in one round", gt=0)
    connect_timeout: float = _opt(120.0, "seconds to wait for all clients to connect", gt=0)


@dataclass(frozen=True)
class SimulationConfig:
    """``[simulation]``: where the clients run when simulated."""

    backend: str = _opt(
        "ray",
        "'ray': Flower's simulation engine; 'inline': every client in this process, "
        "one after another (for debugging and fast tests)",
        choices=("ray", "inline"),
    )
    client_cpus: float = _opt(1.0, "CPUs reserved per client on the Ray backend", gt=0)


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the network trained by the federation."""

    name: str = _opt("cnn", "'logreg', 'mlp', 'cnn' or a dotted path to a factory")
    hidden: int = _opt(64, "hidden width", ge=1)


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: federated training (also used by retraining)."""

    strategy: str = _opt("fedavg", "server strategy that trains and keeps history")
    rounds: int = _opt(20, "federated rounds", ge=1)
    local_epochs: float = _opt(2.0, "local epochs per round (fractions allowed)", gt=0)
    batch_size: int = _opt(32, "local minibatch size", ge=1)
    learning_rate: float = _opt(0.05, "local SGD learning rate", gt=0)
    momentum: float = _opt(0.9, "local SGD momentum (fresh each round)", ge=0, le=1)
    weight_decay: float = _opt(0.0, "local SGD weight decay", ge=0)


@dataclass(frozen=True)
class HistoryConfig:
    """``[history]``: which rounds the server keeps, and where."""

    delta_t: int = _opt(2, "keep rounds 1, 1 + delta_t, 1 + 2 delta_t, ...", ge=1)
    storage: str = _opt("memory", "where the history lives", choices=("memory", "disk"))
    path: str = _opt("", "folder of a disk history (default: <run folder>/history)")


@dataclass(frozen=True)
class CanaryConfig:
    """``[canary]``: a backdoor planted in one client's data to measure forgetting."""

    enabled: bool = _opt(True, "plant the canary")
    client: int = _opt(0, "client whose data carries the canary", ge=0)
    fraction: float = _opt(0.5, "share of that client's examples poisoned", gt=0, le=1)
    target_class: int = _opt(0, "class the trigger maps to", ge=0)
    trigger_size: int = _opt(3, "side of the square pixel trigger", ge=1)
    memorization: int = _opt(
        50,
        "noise records with random labels added to that client's data: fit only by "
        "memorising, they make membership inference measurable",
        ge=0,
    )


@dataclass(frozen=True)
class UnlearningConfig:
    """``[unlearning]``: who asks to be forgotten, and how the server forgets.

    Options of a method go in a sub-table named after it, e.g. ``[unlearning.federaser]``.
    """

    requesters: list[int] = field(
        default_factory=lambda: [0],
        metadata={"help": "clients that ask to be forgotten after training"},
    )
    scope: str = _opt(
        "client",
        "what requesters ask to forget: 'client' (all their data), 'canary' (their "
        "canary records), 'random' (a random record_fraction of their records)",
        choices=("client", "canary", "random"),
    )
    record_fraction: float = _opt(
        0.1, "share of records asked for when scope = 'random'", gt=0, le=1
    )
    sequential: bool = _opt(
        False,
        "serve accepted requests one after another, each from the model the previous one "
        "left (audited after each), instead of all at once",
    )
    methods: list[str] = field(
        default_factory=lambda: ["federaser"],
        metadata={"help": "unlearning methods (aliases or dotted paths); 'all' for every one"},
    )
    reference: str = _opt("retrain", "exact reference every method is audited against")
    options: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"help": "options per method", "table": True}
    )

    def options_for(self, method: str) -> dict[str, Any]:
        """Options given for ``method`` in ``[unlearning.<method>]`` (empty if none)."""
        return dict(self.options.get(method, {}))


@dataclass(frozen=True)
class AttackConfig:
    """``[attack]``: inference attacks on the released models (phase 6).

    The attacker is an outside ``observer`` (query access to the released models, its
    own data drawn from the held-out split) or a ``client`` (the client ``client``,
    whose role must be an inference attacker; it uses its own partition and the weights
    it is sent). Every attack runs on every method's model and on the reference.
    """

    enabled: bool = _opt(False, "run the leakage audit")
    attacker: str = _opt("observer", "who attacks", choices=("observer", "client"))
    client: int = _opt(-1, "the attacking client's id when attacker = 'client'", ge=-1)
    access: str = _opt(
        "full", "what the observer may query: probabilities or labels", choices=("full", "label")
    )
    candidates: int = _opt(200, "candidate records per side (members / non-members)", ge=10)
    shadow_models: int = _opt(4, "shadow (original, unlearned) pairs of the gap attack", ge=1)
    shadow_epochs: float = _opt(10.0, "training epochs of each shadow model", gt=0)
    features: str = _opt(
        "sorted_difference",
        "gap-attack features",
        choices=("difference", "sorted_difference", "l2", "concatenation"),
    )
    classifier: str = _opt("logistic", "gap-attack model", choices=("logistic", "forest"))
    aux_fraction: float = _opt(
        0.5, "share of the held-out split the observer holds as its own data", gt=0, lt=1
    )
    client_samples: int = _opt(
        20, "records the attacker holds of each candidate client (deletion inference)", ge=1
    )


@dataclass(frozen=True)
class PrivacyConfig:
    """``[privacy]``: differential privacy of training (see :mod:`fedunlearn.privacy`).

    ``local``: every client trains with Opacus DP-SGD (clip per-sample gradients to
    ``max_grad_norm``, add noise ``noise_multiplier``, or the noise that makes training
    spend ``target_epsilon``). ``central``: Flower's server-side fixed-clipping wrapper
    clips client updates to ``clipping_norm`` and noises the aggregate.
    """

    mode: str = _opt("none", "where DP noise is added", choices=("none", "local", "central"))
    noise_multiplier: float = _opt(1.0, "Gaussian noise / clipping norm", ge=0)
    target_epsilon: float = _opt(
        0.0,
        "local: choose the noise so training spends this epsilon (0: use noise_multiplier)",
        ge=0,
    )
    delta: float = _opt(1e-5, "the delta of the (epsilon, delta) guarantee", gt=0, lt=1)
    max_grad_norm: float = _opt(1.0, "local: per-sample gradient clipping norm", gt=0)
    clipping_norm: float = _opt(1.0, "central: client update clipping norm", gt=0)


@dataclass(frozen=True)
class MaliciousConfig:
    """``[malicious]``: what a ``malicious-unlearner`` client does with unlearning.

    * ``forge``: asks to remove client ``victim``'s data (not its own);
    * ``forge_records``: asks to remove ``records`` records it never held;
    * ``over_unlearn``: trains on ``records`` records it crafts near the decision
      boundary (mixes of two classes), then asks to remove them;
    * ``camouflage``: trains on ``poison`` records carrying a second trigger relabelled
      to ``poison_target`` plus ``camouflage`` records with the same trigger and their
      true labels (the poison stays dormant), then asks to remove the camouflage;
    * ``flood``: asks to remove ``records`` of its records in ``requests`` separate
      requests (with ``unlearning.sequential`` each costs a full unlearning).

    With ``control = true`` it makes instead an honest request of the same size (its
    own data, or as many of its genuine records), so effects are read against it.
    """

    behaviour: str = _opt(
        "forge",
        "the abuse",
        choices=("forge", "forge_records", "over_unlearn", "camouflage", "flood"),
    )
    control: bool = _opt(False, "make an honest request of the same size instead")
    victim: int = _opt(1, "forge: the client whose data it asks to remove", ge=0)
    records: int = _opt(40, "records it asks to remove (crafted, camouflage or flooded)", ge=1)
    requests: int = _opt(10, "flood: how many requests", ge=1)
    poison: int = _opt(40, "camouflage: poison records", ge=1)
    camouflage: int = _opt(80, "camouflage: camouflage records", ge=1)
    poison_target: int = _opt(1, "camouflage: class the poison trigger maps to", ge=0)


@dataclass(frozen=True)
class DefenseConfig:
    """``[defense]``: checks and limits the server applies (S1 before unlearning)."""

    verify_owner: bool = _opt(
        True, "refuse a request to remove any client's data but the requester's own"
    )
    verify_commitment: bool = _opt(
        True,
        "refuse records their owner (the client named in the request) did not commit to "
        "(salted hashes) when it joined",
    )
    max_requests: int = _opt(0, "requests accepted per client over a run (0: no limit)", ge=0)
    monitor: bool = _opt(
        False, "check every unlearned model on server-held data before accepting it (S2)"
    )
    max_accuracy_drop: float = _opt(
        0.05, "monitor: reject when validation accuracy falls by more than this", ge=0, le=1
    )
    max_trigger_rise: float = _opt(
        0.2, "monitor: reject when the trigger scan's backdoor score rises by more", ge=0, le=1
    )
    on_anomaly: str = _opt(
        "reject",
        "monitor: 'reject' keeps the previous model, leaves that request unserved and "
        "serves later ones; 'halt' also stops serving requests with that method",
        choices=("reject", "halt"),
    )
    validation_size: int = _opt(400, "monitor: held-out records the server validates on", ge=10)


@dataclass(frozen=True)
class ReleaseConfig:
    """``[release]``: what the world gets of an unlearned model (defence stage S3).

    Output modes: ``full`` probabilities, ``top_k`` (the ``k`` largest, the rest 0),
    ``label`` (the predicted class only), ``rounded`` (to ``decimals``), ``temperature``
    (softmax at ``temperature``). ``param_noise`` adds Gaussian noise of that standard
    deviation to the released weights. The leakage audit attacks what is released.
    """

    mode: str = _opt(
        "full", "released outputs", choices=("full", "top_k", "label", "rounded", "temperature")
    )
    k: int = _opt(3, "top_k: classes released", ge=1)
    decimals: int = _opt(1, "rounded: decimals kept", ge=0)
    temperature: float = _opt(4.0, "temperature: softmax temperature", gt=0)
    param_noise: float = _opt(0.0, "std of Gaussian noise on released weights", ge=0)


@dataclass(frozen=True)
class RolesConfig:
    """``[roles]``: the role of each client; ``default`` for those not listed.

    ``[roles] default = "honest"`` and ``"3" = "my_lab.roles:Spy"`` give client 3 a
    custom role.
    """

    default: str = _opt("honest", "role of clients not listed")
    clients: dict[int, str] = field(
        default_factory=dict, metadata={"help": "role by client id", "table": True}
    )

    def role_of(self, client: int) -> str:
        """The role name of ``client``."""
        return self.clients.get(client, self.default)


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: where results go."""

    dir: str = _opt("results", "parent folder of run folders")
    run_dir: str = _opt("", "exact run folder (default: <dir>/<name>-seed<seed>-<time>)")
    figures: bool = _opt(True, "draw matplotlib figures")
    verbose: bool = _opt(False, "show Flower's own log lines")


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "federation": FederationConfig,
    "simulation": SimulationConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "history": HistoryConfig,
    "canary": CanaryConfig,
    "unlearning": UnlearningConfig,
    "roles": RolesConfig,
    "attack": AttackConfig,
    "privacy": PrivacyConfig,
    "malicious": MaliciousConfig,
    "defense": DefenseConfig,
    "release": ReleaseConfig,
    "output": OutputConfig,
}


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment, from partitioning to audit. See the module docstring."""

    name: str = "default"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    unlearning: UnlearningConfig = field(default_factory=UnlearningConfig)
    roles: RolesConfig = field(default_factory=RolesConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    malicious: MaliciousConfig = field(default_factory=MaliciousConfig)
    defense: DefenseConfig = field(default_factory=DefenseConfig)
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], source: str = "experiment config"
    ) -> ExperimentConfig:
        """Validate a nested mapping (as read from TOML) into a config."""
        problems: list[str] = []
        top_keys = {"name", "seed", *SECTIONS}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in top_keys:
                problems.append(_unknown(key, top_keys, ""))
            elif key in SECTIONS:
                if not isinstance(value, Mapping):
                    problems.append(f"[{key}] must be a table, got {value!r}")
                    continue
                values[key] = _parse_section(SECTIONS[key], key, value, problems)
            elif key == "name":
                values[key] = _coerce("name", value, str, problems)
            else:
                values[key] = _coerce("seed", value, int, problems)
        if problems:
            raise ConfigError(problems, source)
        config = cls(**{k: v for k, v in values.items() if v is not None})
        config.check()
        return config

    @classmethod
    def from_toml(cls, path: str | Path) -> ExperimentConfig:
        """Read and validate a TOML experiment file."""
        file = Path(path)
        if not file.is_file():
            raise ConfigError([f"file {str(file)!r} does not exist"], "experiment config")
        try:
            raw = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError([f"not valid TOML: {err}"], f"config file {file}") from err
        return cls.from_dict(raw, source=f"config file {file}")

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> ExperimentConfig:
        """Rebuild a config from Flower's flat ``run_config`` (``"a.b": value`` keys)."""
        nested: dict[str, Any] = {}
        for key, value in run_config.items():
            parts = str(key).split(".")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return cls.from_dict(nested, source="Flower run config")

    # ---------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        """Nested plain-data form (TOML-serialisable; round-trips with from_dict)."""
        out: dict[str, Any] = {"name": self.name, "seed": self.seed}
        for section in SECTIONS:
            obj = getattr(self, section)
            table: dict[str, Any] = {}
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if f.metadata.get("table"):
                    table.update({str(k): v for k, v in value.items()})
                else:
                    table[f.name] = list(value) if isinstance(value, list) else value
            out[section] = table
        return out

    def to_toml(self) -> str:
        """The resolved config as TOML text."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    def to_run_config(self) -> dict[str, bool | int | float | str]:
        """Flat form for Flower's ``run_config``: dotted keys, lists as ``"0,3"``."""
        flat: dict[str, bool | int | float | str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, Mapping):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            elif isinstance(value, list):
                flat[prefix] = ",".join(str(v) for v in value)
            else:
                flat[prefix] = value

        walk("", self.to_dict())
        return flat

    def with_overrides(self, assignments: Sequence[str]) -> ExperimentConfig:
        """A copy with ``"section.key=value"`` assignments applied.

        Keys and values use TOML syntax (quote a key part that holds dots, e.g.
        ``'unlearning."my_lab.methods:M".alpha=2'``); a value that is not valid TOML is
        taken as a string, so ``model.name=mlp`` works unquoted.
        """
        raw = self.to_dict()
        problems = []
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            if not sep or not key.strip():
                problems.append(f"override {assignment!r} is not of the form key=value")
                continue
            try:
                try:
                    update = tomllib.loads(f"{key.strip()} = {text.strip()}")
                except tomllib.TOMLDecodeError:
                    update = tomllib.loads(f"{key.strip()} = {json.dumps(text.strip())}")
            except tomllib.TOMLDecodeError as err:
                problems.append(f"override {assignment!r}: the key is not valid TOML ({err})")
                continue
            problem = _merge(raw, update, assignment)
            if problem:
                problems.append(problem)
        if problems:
            raise ConfigError(problems, "overrides")
        return ExperimentConfig.from_dict(raw, source="experiment config with overrides")

    # ---------------------------------------------------------------- checks
    def check(self) -> None:
        """Cross-key checks (ranges that depend on other keys)."""
        problems: list[str] = []
        n = self.federation.num_clients
        if self.federation.min_train_clients > n:
            problems.append(
                f"federation.min_train_clients ({self.federation.min_train_clients}) "
                f"exceeds federation.num_clients ({n})"
            )
        if self.canary.enabled and self.canary.client >= n:
            problems.append(
                f"canary.client must be a client id in 0..{n - 1}, got {self.canary.client}"
            )
        bad = [c for c in self.unlearning.requesters if not 0 <= c < n]
        if bad:
            problems.append(f"unlearning.requesters {bad} are not client ids in 0..{n - 1}")
        if len(set(self.unlearning.requesters)) >= n:
            problems.append("unlearning.requesters must leave at least one client")
        bad_roles = [c for c in self.roles.clients if not 0 <= c < n]
        if bad_roles:
            problems.append(f"[roles] names clients {bad_roles}, not client ids in 0..{n - 1}")
        if self.history.delta_t > self.training.rounds:
            problems.append(
                f"history.delta_t ({self.history.delta_t}) exceeds training.rounds "
                f"({self.training.rounds}); no round after the first would be kept"
            )
        if self.attack.enabled and self.attack.attacker == "client":
            if not 0 <= self.attack.client < n:
                problems.append(
                    f"attack.client must be a client id in 0..{n - 1} when attack.attacker = "
                    f"'client', got {self.attack.client}"
                )
            elif self.attack.client in self.unlearning.requesters:
                problems.append("attack.client asks to be forgotten; pick another attacker")
        if not 0 <= self.malicious.victim < n:
            problems.append(f"malicious.victim must be a client id in 0..{n - 1}")
        if self.data.dataset == "npz" and not self.data.path:
            problems.append("data.path must name the .npz file when data.dataset = 'npz'")
        if problems:
            raise ConfigError(problems)


# -------------------------------------------------------------------- helpers


def digest(raw: Mapping[str, Any]) -> str:
    """A short stable digest of a config's dict form (or any part of it)."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _merge(target: dict[str, Any], update: Mapping[str, Any], assignment: str) -> str | None:
    """Deep-merge ``update`` into ``target``; a problem message if a table meets a value."""
    for key, value in update.items():
        if isinstance(value, Mapping):
            node = target.setdefault(key, {})
            if not isinstance(node, dict):
                return f"override {assignment!r}: {key!r} is a value, not a table"
            problem = _merge(node, value, assignment)
            if problem:
                return problem
        else:
            target[key] = value
    return None


def _unknown(key: str, allowed: set[str] | Sequence[str], section: str) -> str:
    where = f"[{section}]" if section else "the top level"
    full = f"{section}.{key}" if section else key
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key {full!r}.{hint} Allowed in {where}: {', '.join(sorted(allowed))}"


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def _coerce(name: str, value: Any, tp: Any, problems: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; append a problem if it fails."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        items: Any = value
        if isinstance(value, str):  # from a flat Flower run_config: "0,3" or "[0, 3]"
            text = value.strip().strip("[]")
            items = [s.strip() for s in text.split(",") if s.strip()]
            if item_tp is int:
                try:
                    items = [int(s) for s in items]
                except ValueError:
                    problems.append(f"{name} must be a list of integers, got {value!r}")
                    return None
        if not isinstance(items, list):
            problems.append(f"{name} must be a list, got {value!r}")
            return None
        out = [_coerce(f"{name}[{i}]", v, item_tp, problems) for i, v in enumerate(items)]
        return None if any(v is None for v in out) else out
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - schema error
        raise TypeError(f"unsupported config type {tp}")
    problems.append(f"{name} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    return None


def _check_bounds(name: str, value: Any, meta: Mapping[str, Any], problems: list[str]) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}{hint}"
        )
    for op, test, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(op)
        if bound is not None and not test(value, bound):
            problems.append(f"{name} must be {word} {bound}, got {value!r}")


def _parse_section(cls: type, section: str, raw: Mapping[str, Any], problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    table_field = next((f for f in fields.values() if f.metadata.get("table")), None)
    scalar_names = {n for n, f in fields.items() if not f.metadata.get("table")}
    values: dict[str, Any] = {}
    table: dict[Any, Any] = {}
    start = len(problems)
    for key, value in raw.items():
        name = f"{section}.{key}"
        if key in scalar_names:
            coerced = _coerce(name, value, hints[key], problems)
            if coerced is not None:
                _check_bounds(name, coerced, fields[key].metadata, problems)
                values[key] = coerced
        elif table_field is not None and _fits_table(section, key, value):
            table_key, table_value = _table_entry(section, key, value, problems)
            if table_key is not None:
                table[table_key] = table_value
        else:
            problems.append(_unknown(key, scalar_names, section))
    if len(problems) > start:
        return None
    if table_field is not None:
        values[table_field.name] = table
    return cls(**values)


def _fits_table(section: str, key: str, value: Any) -> bool:
    if section == "unlearning":  # [unlearning.<method>] sub-tables
        return isinstance(value, Mapping)
    if section == "roles":  # "3" = "role"
        return str(key).isdigit()
    return False


def _table_entry(section: str, key: str, value: Any, problems: list[str]) -> tuple[Any, Any]:
    if section == "roles":
        if not isinstance(value, str):
            problems.append(f"roles.{key} must be a role name, got {value!r}")
            return None, None
        return int(key), value
    options: dict[str, Any] = {}
    for opt, v in value.items():
        if isinstance(v, str):  # flat run configs carry lists as "a,b" strings
            with contextlib.suppress(json.JSONDecodeError):
                v = json.loads(v) if v.strip().startswith("[") else v
        options[str(opt)] = v
    return str(key), options


def describe() -> str:
    """Every config key with its default and help, for ``fedunlearn config --help``."""
    lines = [
        "name = 'default'   # run name, part of the run folder",
        "seed = 0   # the seed of everything",
    ]
    for section, cls in SECTIONS.items():
        lines.append(f"\n[{section}]")
        for f in dataclasses.fields(cls):
            if f.metadata.get("table"):
                lines.append(f"# {f.metadata['help']} (sub-table)")
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"{f.name} = {default!r}   # {f.metadata['help']}")
    return "\n".join(lines)
