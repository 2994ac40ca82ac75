"""Load every plugin an experiment names, and check it, before anything runs."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError, describe_options, toml_value
from fedunlearn.federation.recording import RecordingFedAvg, RecordingMixin
from fedunlearn.federation.trainer import trainer_problems
from fedunlearn.plugins import PluginError, available, load_plugin
from fedunlearn.roles.role import ClientRole, load_role, role_with_options
from fedunlearn.unlearning.method import UnlearningMethod, make_method


@dataclass(frozen=True)
class Components:
    """The methods, reference, trainer and roles of an experiment, loaded.

    ``methods`` maps a label (the name in reports) to a method, in config order; the
    reference is kept apart and always runs.
    """

    methods: dict[str, UnlearningMethod]
    reference_label: str
    reference: UnlearningMethod
    trainer: type[RecordingMixin]
    """The training strategy class (``training.strategy``)."""
    skipped: dict[str, str]
    """Methods left out, with the reason (e.g. no record-level unlearning)."""
    roles: dict[str, tuple[type[ClientRole], Any]] = field(default_factory=dict)
    """Every role some client has: its class and options."""

    def to_run(self) -> list[tuple[str, UnlearningMethod]]:
        """Every method to run, the reference last."""
        runs = [(k, m) for k, m in self.methods.items() if k != self.reference_label]
        return [*runs, (self.reference_label, self.reference)]


def label_of(name: str, method: UnlearningMethod) -> str:
    """The report label of a method: its alias, or its class's ``name``."""
    if ":" not in name and "." not in name:
        return name
    return type(method).name or name.rpartition(":")[2].rpartition(".")[2]


def method_names(config: ExperimentConfig) -> tuple[list[str], bool]:
    """Method names to run (``all`` expanded) and whether ``all`` was asked for."""
    names = list(config.unlearning.methods)
    if "all" in names:
        every = [m for m in available("method") if m != config.unlearning.reference]
        names = [n for n in names if n != "all"]
        return list(dict.fromkeys([*every, *names])), True
    return list(dict.fromkeys(names)), False


def _option_spellings(
    config: ExperimentConfig, selected: list[str], extra: list[str], problems: list[str]
) -> dict[str, str]:
    """Option tables written under another spelling of a selected method
    (``pkg.mod:Cls`` for ``pkg.mod.Cls``): table name -> the selected name."""
    loaded: dict[str, Any] = {}
    for name in selected:
        try:
            loaded[name] = load_plugin("method", name)
        except PluginError:
            continue  # reported when the method loads
    out: dict[str, str] = {}
    for table in extra:
        try:
            cls = load_plugin("method", table)
        except PluginError:
            continue
        for name, selected_cls in loaded.items():
            if cls is selected_cls:
                if config.unlearning.options_for(name):
                    problems.append(
                        f"[unlearning.{table}] and [unlearning.{name}] both set options of "
                        f"{name}; keep one"
                    )
                out[table] = name
    return out


def _options_spelled_for(
    name: str, spellings: dict[str, str], tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Options of ``name`` written under another spelling of it."""
    return next((dict(tables[t]) for t, n in spellings.items() if n == name), {})


def resolve_components(config: ExperimentConfig) -> Components:
    """Load the methods, reference, trainer and roles; ConfigError lists every problem."""
    problems: list[str] = []
    u = config.unlearning
    names, everything = method_names(config)
    every = set(available("method")) if everything else set()
    if not names:
        problems.append("unlearning.methods is empty; name at least one method (or 'all')")
    methods: dict[str, UnlearningMethod] = {}
    skipped: dict[str, str] = {}
    reference: UnlearningMethod | None = None
    reference_label = u.reference
    record_level = u.scope != "client"
    extra_options = [n for n in u.options if n not in names and n != u.reference]
    spellings = _option_spellings(config, [*names, u.reference], extra_options, problems)
    for name in dict.fromkeys([*names, u.reference, *extra_options]):
        if name in spellings:
            continue  # the options of a selected method, written under another spelling
        try:
            options = {**u.options_for(name), **_options_spelled_for(name, spellings, u.options)}
            method = make_method(name, options)
        except ConfigError as err:
            problems += err.problems
            continue
        method_problems = method.check(config)
        label = label_of(name, method)
        if everything and method_problems and name in every and name != u.reference:
            # "all" means every method that can run here; say why the others do not.
            skipped[label] = "; ".join(method_problems)
            continue
        problems += method_problems
        if name == u.reference:
            reference, reference_label = method, label
            if not type(method).exact:
                problems.append(
                    f"unlearning.reference {name!r} is not an exact method; audits need one "
                    "(use 'retrain')"
                )
            continue
        if name in extra_options:
            continue  # options of a method not run: validated only
        if record_level and not type(method).supports_records:
            reason = (
                f"{label} forgets whole clients only, and unlearning.scope = {u.scope!r} "
                "asks to forget records"
            )
            if everything:
                skipped[label] = reason
                continue
            problems.append(f"{reason}; choose a method that supports records or scope = 'client'")
        if label in methods:
            problems.append(f"two methods are labelled {label!r}; give them distinct names")
        methods[label] = method
    trainer: type[RecordingMixin] = RecordingFedAvg
    try:
        trainer = load_plugin("trainer", config.training.strategy)
        problems += trainer_problems(trainer, config.training.strategy)
    except PluginError as err:
        problems.append(f"training.strategy: {err}")
    roles: dict[str, tuple[type[ClientRole], Any]] = {}
    for role in dict.fromkeys([*config.roles.in_use, *config.roles.options]):
        try:
            cls, options = role_with_options(config, role)
        except (PluginError, TypeError) as err:
            problems.append(f"[roles]: {err}")
            continue
        except ConfigError as err:
            problems += err.problems
            continue
        problems += cls.check(options, config)
        if role in config.roles.in_use:
            roles[role] = (cls, options)
    a = config.attack
    if a.enabled and a.attacker == "client" and 0 <= a.client < config.federation.num_clients:
        name = config.roles.role_of(a.client)
        try:
            if not load_role(name).attacks():
                problems.append(
                    f"attack.client {a.client} has role {name!r}, which does not attack; give it "
                    f'an attacker role: [roles] "{a.client}" = "inference-attacker"'
                )
        except (PluginError, TypeError):
            pass  # reported above
    if problems or reference is None:
        raise ConfigError(problems or [f"unlearning.reference {u.reference!r} did not load"])
    return Components(
        methods=methods,
        reference_label=reference_label,
        reference=reference,
        trainer=trainer,
        skipped=skipped,
        roles=roles,
    )


def describe_plugins() -> str:
    """The options of every registered method and role, as config tables with their
    defaults (the tail of ``fedunlearn config``)."""
    lines = ["", "# Options of each unlearning method: [unlearning.<method>]"]
    for name in available("method"):
        cls = load_plugin("method", name)
        params = inspect.signature(cls.__init__).parameters.values()
        options = [p for p in params if p.name != "self" and p.default is not p.empty]
        summary = (inspect.getdoc(cls) or "").split("\n")[0]
        lines += ["", f"[unlearning.{name}]   # {summary}"]
        lines += [f"{p.name} = {toml_value(p.default)}" for p in options] or ["# (no options)"]
    lines += ["", "# Options of each client role: [roles.<role>]"]
    for name in available("role"):
        cls = load_role(name)
        summary = (inspect.getdoc(cls) or "").split("\n")[0]
        if cls.Options is None:
            lines += ["", f"[roles.{name}]   # {summary}", "# (no options)"]
        else:
            lines += ["", *describe_options(cls.Options, f"roles.{name}")]
            lines[-len(dataclasses.fields(cls.Options)) - 1] += f"   # {summary}"
    return "\n".join(lines)
