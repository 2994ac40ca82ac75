"""The sections of the experiment config, one frozen dataclass each.

Every field says its default, its meaning and what it allows (see
:func:`~fedunlearn.config.options.option`); ``fedunlearn config`` prints them all.
Options of a method or a role are not here: the method or role declares them, and its
sub-table (``[unlearning.<method>]``, ``[roles.<role>]``) is checked against it when
the experiment's plugins load.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from fedunlearn.config.options import option

DATASETS = ("digits", "mnist5k", "npz", "disk", "csv", "parquet", "json", "imagefolder")
"""Datasets the config accepts (loaded by :mod:`fedunlearn.data.datasets`), besides
``"hf:<hub name>"``: two built-ins, a ``.npz`` file, and the kinds read with Hugging
Face ``datasets`` (a ``save_to_disk`` folder, tabular files, an image folder)."""

PARTITION_SCHEMES = ("iid", "dirichlet", "pathological", "natural")
"""How examples may be split over clients (:mod:`fedunlearn.data.partition`)."""

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
class DataConfig:
    """``[data]``: which dataset, which of its columns, and how it is split over clients.

    ``dataset`` is not checked against a fixed list of choices because ``"hf:<hub
    name>"`` is open: :meth:`problems` checks it (and the keys that depend on it) when
    the experiment config is validated.
    """

    dataset: str = option(
        "mnist5k",
        "dataset: 'digits', 'mnist5k', 'npz', 'disk' (a save_to_disk folder), 'csv', "
        "'parquet', 'json', 'imagefolder' or 'hf:<hub name>' (docs/datasets.md)",
    )
    path: str = option(
        "",
        "the file, glob or folder to read (every dataset but 'digits', 'mnist5k' and 'hf:')",
    )
    split: str = option("", "split to read ('': 'train' if the data has it, else its only split)")
    label: str = option("label", "label column (integers or a ClassLabel)")
    features: list[str] = option(
        [],
        "feature columns ([]: the image column, else every numeric column but the label "
        "and data.partition_by)",
    )
    test_fraction: float = option(0.2, "share held out as the server's test set", gt=0, le=0.5)
    partition: str = option(
        "iid",
        "how examples are split over clients ('natural': one client per value of "
        "data.partition_by)",
        choices=PARTITION_SCHEMES,
    )
    partition_by: str = option("", "column naming each example's client (partition = 'natural')")
    alpha: float = option(0.5, "Dirichlet concentration (partition = 'dirichlet')", gt=0)
    classes_per_client: int = option(2, "classes per client (partition = 'pathological')", ge=1)
    min_partition_size: int = option(10, "Dirichlet: minimum examples per client", ge=1)
    server_fraction: float = option(
        0.0,
        "share of the training pool the server keeps as unlabelled data (for methods "
        "that distill on the server)",
        ge=0,
        lt=0.9,
    )

    WITHOUT_COLUMNS: ClassVar[tuple[str, ...]] = ("digits", "mnist5k", "npz")
    """Datasets read as arrays, without named columns (no label, features or natural
    partition to choose)."""

    @property
    def hub_name(self) -> str:
        """The Hugging Face Hub name of ``dataset = "hf:<name>"`` ('' for other kinds)."""
        return self.dataset.removeprefix("hf:") if self.dataset.startswith("hf:") else ""

    @property
    def has_columns(self) -> bool:
        """Whether the dataset is read with Hugging Face ``datasets`` (named columns)."""
        return bool(self.hub_name) or (
            self.dataset in DATASETS and self.dataset not in self.WITHOUT_COLUMNS
        )

    def problems(self) -> list[str]:
        """What is wrong with these keys together (empty when nothing is)."""
        problems: list[str] = []
        kind = self.dataset
        if not (kind in DATASETS or (kind.startswith("hf:") and self.hub_name.strip())):
            close = difflib.get_close_matches(kind, DATASETS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"data.dataset must be one of {', '.join(repr(d) for d in DATASETS)} or "
                f"'hf:<hub name>' (e.g. 'hf:ylecun/mnist'); got {kind!r}{hint}"
            )
            return problems
        what = {
            "npz": "the .npz file",
            "disk": "the folder written by save_to_disk",
            "csv": "the .csv file, glob or folder",
            "parquet": "the .parquet file, glob or folder",
            "json": "the .json/.jsonl file, glob or folder",
            "imagefolder": "the folder of images",
        }
        if kind in what and not self.path:
            problems.append(f"data.path must name {what[kind]} when data.dataset = {kind!r}")
        if self.path and kind not in what:
            problems.append(
                f"data.path = {self.path!r} is not read when data.dataset = {kind!r}: set "
                f"data.dataset to the kind of file it is ({', '.join(map(repr, what))}) or "
                "leave data.path empty"
            )
        if not self.label:
            problems.append("data.label must name the label column, got ''")
        if self.label in self.features:
            problems.append(f"data.features must not hold the label column {self.label!r}")
        if any(not f for f in self.features):
            problems.append("data.features holds an empty column name")
        if self.partition == "natural" and not self.partition_by:
            problems.append(
                "data.partition = 'natural' needs data.partition_by, the column naming "
                "each example's client"
            )
        if self.partition_by and self.partition != "natural":
            problems.append(
                f"data.partition_by = {self.partition_by!r} is read only when "
                f"data.partition = 'natural' (got {self.partition!r}); set "
                "data.partition = 'natural' or leave data.partition_by empty"
            )
        if self.partition == "natural" and not self.has_columns:
            problems.append(
                f"data.partition = 'natural' needs a dataset with columns ('disk', 'csv', "
                f"'parquet', 'json', 'imagefolder' or 'hf:<hub name>'); {kind!r} has none"
            )
        return problems


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
        "ray",
        "'ray': Flower's simulation engine; 'inline': every client in this process, "
        "one after another (for debugging and fast tests)",
        choices=("ray", "inline"),
    )
    client_cpus: float = option(1.0, "CPUs reserved per client on the Ray backend", gt=0)


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
class AttackConfig:
    """``[attack]``: inference attacks on the released models (phase 6).

    The attacker is an outside ``observer`` (query access to the released models, its
    own data drawn from the held-out split) or a ``client`` (the client ``client``,
    whose role must be an inference attacker; it uses its own partition and the weights
    it is sent). Every attack runs on every method's model and on the reference.
    """

    enabled: bool = option(False, "run the leakage audit")
    attacker: str = option("observer", "who attacks", choices=("observer", "client"))
    client: int = option(-1, "the attacking client's id when attacker = 'client'", ge=-1)
    access: str = option(
        "full", "what the observer may query: probabilities or labels", choices=("full", "label")
    )
    candidates: int = option(200, "candidate records per side (members / non-members)", ge=10)
    shadow_models: int = option(4, "shadow (original, unlearned) pairs of the gap attack", ge=1)
    shadow_epochs: float = option(10.0, "training epochs of each shadow model", gt=0)
    features: str = option(
        "sorted_difference",
        "gap-attack features",
        choices=("difference", "sorted_difference", "l2", "concatenation"),
    )
    classifier: str = option("logistic", "gap-attack model", choices=("logistic", "forest"))
    aux_fraction: float = option(
        0.5, "share of the held-out split the observer holds as its own data", gt=0, lt=1
    )
    client_samples: int = option(
        20, "records the attacker holds of each candidate client (deletion inference)", ge=1
    )


@dataclass(frozen=True)
class PrivacyConfig:
    """``[privacy]``: differential privacy of training (see :mod:`fedunlearn.defenses.privacy`).

    ``local``: every client trains with Opacus DP-SGD (clip per-sample gradients to
    ``max_grad_norm``, add noise ``noise_multiplier``, or the noise that makes training
    spend ``target_epsilon``). ``central``: Flower's server-side fixed-clipping wrapper
    clips client updates to ``clipping_norm`` and noises the aggregate.
    """

    mode: str = option("none", "where DP noise is added", choices=("none", "local", "central"))
    noise_multiplier: float = option(1.0, "Gaussian noise / clipping norm", ge=0)
    target_epsilon: float = option(
        0.0,
        "local: choose the noise so training spends this epsilon (0: use noise_multiplier)",
        ge=0,
    )
    delta: float = option(1e-5, "the delta of the (epsilon, delta) guarantee", gt=0, lt=1)
    max_grad_norm: float = option(1.0, "local: per-sample gradient clipping norm", gt=0)
    clipping_norm: float = option(1.0, "central: client update clipping norm", gt=0)


@dataclass(frozen=True)
class DefenseConfig:
    """``[defense]``: checks and limits the server applies (S1 before unlearning)."""

    verify_owner: bool = option(
        True, "refuse a request to remove any client's data but the requester's own"
    )
    verify_commitment: bool = option(
        True,
        "refuse records their owner (the client named in the request) did not commit to "
        "(salted hashes) when it joined",
    )
    max_requests: int = option(5, "requests accepted per client over a run (0: no limit)", ge=0)
    monitor: bool = option(
        False, "check every unlearned model on server-held data before accepting it (S2)"
    )
    max_accuracy_drop: float = option(
        0.05, "monitor: reject when validation accuracy falls by more than this", ge=0, le=1
    )
    max_trigger_rise: float = option(
        0.2, "monitor: reject when the trigger scan's backdoor score rises by more", ge=0, le=1
    )
    on_anomaly: str = option(
        "reject",
        "monitor: 'reject' keeps the previous model, leaves that request unserved and "
        "serves later ones; 'halt' also stops serving requests with that method",
        choices=("reject", "halt"),
    )
    validation_size: int = option(400, "monitor: held-out records the server validates on", ge=10)


@dataclass(frozen=True)
class ReleaseConfig:
    """``[release]``: what the world gets of an unlearned model (defence stage S3).

    Output modes: ``full`` probabilities, ``top_k`` (the ``k`` largest, the rest 0),
    ``label`` (the predicted class only), ``rounded`` (to ``decimals``), ``temperature``
    (softmax at ``temperature``). ``param_noise`` adds Gaussian noise of that standard
    deviation to the released weights. The leakage audit attacks what is released.
    """

    mode: str = option(
        "full", "released outputs", choices=("full", "top_k", "label", "rounded", "temperature")
    )
    k: int = option(3, "top_k: classes released", ge=1)
    decimals: int = option(1, "rounded: decimals kept", ge=0)
    temperature: float = option(4.0, "temperature: softmax temperature", gt=0)
    param_noise: float = option(0.0, "std of Gaussian noise on released weights", ge=0)


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
