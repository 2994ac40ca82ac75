"""The results of a run, typed: what ``metrics.json`` holds, and what every reader reads.

The run's phases fill one :class:`RunMetrics`; the results folder, the printed table,
sweeps, comparisons and study reports all read it back (:meth:`RunMetrics.load`), so a
field is named and typed in one place. ``metrics.json`` is
:meth:`RunMetrics.to_json`: plain JSON, NaN written as ``null``.

Figures of one model are a flat mapping from a figure's name to a number
(:data:`Figures`); costs are such mappings too (``client_epochs``, ``rounds``,
``wall_seconds``, ...), so new figures need no schema change.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Figures = dict[str, float]
"""Named figures of one model or one phase (an audit, a cost, table columns)."""

STATUSES = ("complete", "partial", "failed")
"""``complete``: every part ran; ``partial``: a part failed and a sweep redoes the run,
the rest is kept; ``failed``: the run stopped (its error and rounds so far are kept)."""


@dataclass
class Stage:
    """One unlearning stage: what it forgot and every model audited after it."""

    stage: int
    forget: dict[str, Any]
    forgotten_so_far: dict[str, Any]
    models: dict[str, Figures]
    cost: dict[str, Figures]


@dataclass
class HistorySize:
    """The history training kept, and how much of it each method needs."""

    storage: str
    delta_t: int
    kept_rounds: list[int]
    bytes: int
    disk_bytes: int
    bytes_needed: dict[str, int]


@dataclass
class Costs:
    """What each phase cost: training, each method (summed over stages), and each
    method relative to the reference."""

    training: Figures = field(default_factory=dict)
    methods: dict[str, Figures] = field(default_factory=dict)
    relative_to_reference: dict[str, Figures] = field(default_factory=dict)

    def of(self, label: str) -> Figures:
        """The cost of a model: training for ``original``, else the method's."""
        return self.training if label == "original" else self.methods.get(label, {})

    def to_json(self) -> dict[str, Any]:
        return {
            "training": self.training,
            **self.methods,
            "relative_to_reference": self.relative_to_reference,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Costs:
        raw = dict(raw)
        return cls(raw.pop("training", {}), raw, raw.pop("relative_to_reference", {}))


@dataclass
class PrivacySpent:
    """Epsilon at ``delta``: after training, and of every model (training plus the
    method's own work; infinite when it rests on un-noised client work). ``details``
    holds what the mode adds (noise, per-client figures, assumptions)."""

    mode: str
    delta: float
    training_epsilon: float
    epsilon: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "delta": self.delta,
            "training_epsilon": self.training_epsilon,
            "epsilon": self.epsilon,
            **self.details,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PrivacySpent:
        raw = dict(raw)
        epsilon = {k: _number(v) for k, v in raw.pop("epsilon", {}).items()}
        return cls(
            raw.pop("mode"), raw.pop("delta"), _number(raw.pop("training_epsilon")), epsilon, raw
        )


@dataclass
class Leakage:
    """The leakage audit: metrics by attack, model and figure; or why it did not run."""

    metrics: dict[str, dict[str, Figures]] = field(default_factory=dict)
    setup: dict[str, Any] | None = None
    skipped: str = ""
    failed: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.skipped:
            return {"skipped": self.skipped}
        if self.failed:
            return {"failed": self.failed}
        return self.metrics

    @classmethod
    def from_json(cls, raw: dict[str, Any], setup: dict[str, Any] | None) -> Leakage:
        if "skipped" in raw:
            return cls(skipped=raw["skipped"])
        if "failed" in raw:
            return cls(failed=raw["failed"])
        metrics = {a: {m: _figures(f) for m, f in by.items()} for a, by in raw.items()}
        return cls(metrics=metrics, setup=setup)


@dataclass
class RunMetrics:
    """Everything a run found (``metrics.json``).

    Attributes
    ----------
    name, seed : str, int
        The experiment.
    status : {"complete", "partial", "failed"}
        See :data:`STATUSES`.
    methods : list of str
        Labels of the methods run (the reference not included).
    method_options : dict
        Each method's options, by label.
    reference : str
        Label of the exact reference every model is audited against.
    forgotten, forgotten_clients : dict, list of int
        Everything forgotten over all stages; the clients forgotten whole.
    requests : list of dict
        Every request gathered, with the decision on it and the reason.
    refused_nodes : dict of str
        Nodes refused when they joined (e.g. two claiming one client id), with why.
    missing : dict of dict
        Clients that failed or fell silent, by phase (``training`` or a method's label)
        and round; each round went on without them (``federation.min_reply_fraction``).
    models : dict of Figures
        The audit of every model after the last stage (``original`` included).
    stages : list of Stage
        The audit after each stage.
    errors : dict of str
        Methods or steps that failed or were skipped, with the reason.
    cost : Costs
    history : HistorySize
    details : dict of list
        What each method reports about itself, per stage.
    monitor : dict of list
        Impact-monitor decisions per model and stage (defence stage S2), if it ran.
    privacy : PrivacySpent, optional
        Epsilon spent, under differential privacy.
    attacks : Leakage, optional
        The leakage audit, if enabled.
    dp_audit : dict, optional
        The one-run DP audit (``privacy.audit_canaries > 0``): the audit client, the
        canaries, and per audit (``training``; ``unlearning`` by method) m, r, v, the
        bound ``epsilon_lower`` and the ``epsilon_accounted`` it faces, beta, delta
        (:mod:`fedunlearn.evaluation.privacy_audit`); or ``{"failed": why}``.
    table_columns : dict of Figures
        Further per-model columns for tables (monitor, privacy, attacks).
    total_seconds : float
    environment : dict
        Package versions, platform, git commit.
    error : str
        The error that stopped a failed run.
    """

    name: str
    seed: int
    status: str = "complete"
    methods: list[str] = field(default_factory=list)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: str = ""
    forgotten: dict[str, Any] = field(default_factory=dict)
    forgotten_clients: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused_nodes: dict[str, str] = field(default_factory=dict)
    missing: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    models: dict[str, Figures] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    cost: Costs = field(default_factory=Costs)
    history: HistorySize | None = None
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    monitor: dict[str, list[dict[str, Any]]] | None = None
    privacy: PrivacySpent | None = None
    attacks: Leakage | None = None
    dp_audit: dict[str, Any] | None = None
    table_columns: dict[str, Figures] = field(default_factory=dict)
    total_seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def add_columns(self, label: str, columns: Figures) -> None:
        """Add per-model table columns (kept under ``table_columns``)."""
        self.table_columns.setdefault(label, {}).update(columns)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The ``metrics.json`` form: plain data, NaN as None, optional parts only when
        present."""
        if self.status == "failed":
            return _clean({"status": self.status, "error": self.error})
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name
            not in ("cost", "history", "privacy", "attacks", "dp_audit", "monitor", "error")
        }
        out["stages"] = [dataclasses.asdict(s) for s in self.stages]
        out["cost"] = self.cost.to_json()
        out["history"] = dataclasses.asdict(self.history) if self.history else {}
        if self.monitor is not None:
            out["monitor"] = self.monitor
        if self.privacy is not None:
            out["privacy"] = self.privacy.to_json()
        if self.dp_audit is not None:
            out["dp_audit"] = self.dp_audit
        if self.attacks is not None:
            out["attacks"] = self.attacks.to_json()
            if self.attacks.setup is not None:
                out["attack_setup"] = self.attacks.setup
        if not self.table_columns:
            out.pop("table_columns")
        return _clean(out)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunMetrics:
        """Read the ``metrics.json`` form back (NaN restored where figures are None)."""
        raw = dict(raw)
        status = raw.get("status", "complete")
        if status == "failed":
            return cls(name=raw.get("name", ""), seed=raw.get("seed", 0), **_failed(raw))
        known = {f.name for f in dataclasses.fields(cls)}
        values = {"name": "", "seed": 0, **{k: v for k, v in raw.items() if k in known}}
        values["models"] = {k: _figures(v) for k, v in raw.get("models", {}).items()}
        values["stages"] = [
            Stage(**{**s, "models": {k: _figures(v) for k, v in s["models"].items()}})
            for s in raw.get("stages", [])
        ]
        values["cost"] = Costs.from_json(raw.get("cost", {}))
        history = raw.get("history")
        values["history"] = HistorySize(**history) if history else None
        if "privacy" in raw:
            values["privacy"] = PrivacySpent.from_json(raw["privacy"])
        if "attacks" in raw:
            values["attacks"] = Leakage.from_json(raw["attacks"], raw.get("attack_setup"))
        values["table_columns"] = {k: _figures(v) for k, v in raw.get("table_columns", {}).items()}
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> RunMetrics:
        """Read ``metrics.json`` (or the run folder that holds it)."""
        file = Path(path)
        if file.is_dir():
            file = file / "metrics.json"
        return cls.from_json(json.loads(file.read_text()))

    def dumps(self) -> str:
        """``metrics.json``'s text."""
        return json.dumps(self.to_json(), indent=2, default=_json_default)


def _failed(raw: dict[str, Any]) -> dict[str, Any]:
    return {"status": "failed", "error": raw.get("error", "")}


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _figures(raw: dict[str, Any]) -> Figures:
    return {k: _number(v) for k, v in raw.items()}


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value)
    return str(value)


def _clean(value: Any) -> Any:
    """NaN becomes None, so ``metrics.json`` is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
