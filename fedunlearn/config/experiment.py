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
    methods = ["federaser"]
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

import copy
import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedunlearn.config.audit import AuditConfig
from fedunlearn.config.dataset import DataConfig
from fedunlearn.config.options import (
    ConfigError,
    coerce,
    describe_options,
    parse_table,
    unknown_key,
)
from fedunlearn.config.sections import (
    CanaryConfig,
    FederationConfig,
    HistoryConfig,
    ModelConfig,
    OutputConfig,
    RolesConfig,
    SimulationConfig,
    TrainingConfig,
    UnlearningConfig,
)
from fedunlearn.config.threats import AttackConfig, DefenseConfig, PrivacyConfig, ReleaseConfig

NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
"""What a run name may be: one folder name, never a path."""


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
    "audit": AuditConfig,
    "privacy": PrivacyConfig,
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
    audit: AuditConfig = field(default_factory=AuditConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    defense: DefenseConfig = field(default_factory=DefenseConfig)
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    @property
    def world_seed(self) -> int:
        """The seed of the data world (``data.seed``, or ``seed`` when it is -1)."""
        return self.data.seed if self.data.seed >= 0 else self.seed

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
                problems.append(unknown_key(key, top_keys, ""))
            elif key in SECTIONS:
                if not isinstance(value, Mapping):
                    problems.append(f"[{key}] must be a table, got {value!r}")
                    continue
                values[key] = parse_table(SECTIONS[key], key, value, problems)
            elif key == "name":
                values[key] = coerce("name", value, str, problems)
                if values[key] is not None and not NAME.fullmatch(values[key]):
                    problems.append(
                        f"name must be letters, digits, '.', '_' or '-' (not starting with "
                        f"'.'): it names the run folder inside output.dir; got {values[key]!r}"
                    )
            else:
                values[key] = coerce("seed", value, int, problems)
                if values[key] is not None and values[key] < 0:
                    problems.append(f"seed must be >= 0, got {values[key]}")
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
                    table.update({str(k): copy.deepcopy(v) for k, v in value.items()})
                else:
                    table[f.name] = list(value) if isinstance(value, list) else value
            out[section] = table
        return out  # a copy: editing it (overrides) never changes this frozen config

    def to_toml(self) -> str:
        """The resolved config as TOML text."""
        import tomli_w

        return annotate_unused(tomli_w.dumps(self.to_dict()), "privacy", self.privacy.unused())

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
        problems += self.audit.problems(self.attack, self.release)
        problems += self.data.problems()
        problems += self.history.problems()
        problems += self.attack.problems()
        problems += self.privacy.problems()
        if self.privacy.audit_canaries and not self.unlearning.requesters:
            problems.append(
                "privacy.audit_canaries plants its canaries in the data of the first of "
                "unlearning.requesters, which is empty"
            )
        if problems:
            raise ConfigError(problems)


# -------------------------------------------------------------------- helpers


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


def describe() -> str:
    """Every config key with its default, meaning and allowed values (``fedunlearn
    config``)."""
    lines = [
        'name = "default"   # run name, part of the run folder',
        "seed = 0   # the seed of everything (>= 0); the data world's too unless data.seed >= 0",
    ]
    for section, cls in SECTIONS.items():
        lines += ["", *describe_options(cls, section)]
    return "\n".join(lines)


def annotate_unused(text: str, section: str, unused: Mapping[str, str]) -> str:
    """TOML ``text`` with ``# unused: <why>`` after each key of ``[section]`` in
    ``unused`` (the values stay, so the file still reads back to the same config)."""
    lines, current = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[] ")
        key = line.split(" = ", 1)[0]
        if current == section and " = " in line and key in unused:
            line = f"{line}  # unused: {unused[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"
