"""A sweep file, and its plan: every run of a grid over config keys and seeds, checked.

A sweep is an experiment file with a ``[sweep]`` table::

    name = "federaser-ratio"
    [unlearning]
    methods = ["federaser"]

    [sweep]
    seeds = [0, 1, 2]
    parallel = 1                      # simulations at once
    [sweep.grid]
    "unlearning.federaser.r" = [0.25, 0.5, 1.0]
    "data.alpha" = [0.1, 1.0]

Settings that go together are ``cases``, each crossed with the grid::

    [[sweep.cases]]
    "privacy.mode" = "none"
    [[sweep.cases]]
    "privacy.mode" = "local"
    "privacy.target_epsilon" = 4.0

``fedunlearn sweep FILE`` plans every combination for every seed and checks all of
them before anything runs (an unknown key, an empty list, a key both in the grid and
in a case, or a repeated case or value is an error naming it). Then it runs what is not
already complete in the output folder, so an interrupted sweep resumes where it stopped
(a run counts as complete only for the same resolved config: edit the base experiment
and its runs are redone):

How the runs are run and what they write: :mod:`fedunlearn.studies.sweep`.
``fedunlearn report <out>`` turns the results into a report.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.identity import config_hash
from fedunlearn.config.identity import run_id as make_run_id
from fedunlearn.config.options import ConfigError, toml_value
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.run.components import resolve_components

SWEEP_KEYS = {"seeds", "grid", "cases", "parallel", "out"}


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its grid values, seed, config and folder."""

    run_id: str
    params: dict[str, Any]
    seed: int
    config: ExperimentConfig
    run_dir: Path

    def is_complete(self) -> bool:
        """Whether this run's folder holds a complete result for the same parameters and
        the same resolved config (an edited base experiment makes every run stale)."""
        return self.finished() == "complete"

    def finished(self) -> str | None:
        """``complete`` or ``partial`` (finished, a part failed: a method that
        collapsed, say) when this run's folder holds that result for the same
        parameters and resolved config; None otherwise. A sweep redoes partial runs;
        its table still reports them, with the failure."""
        try:
            status = RunMetrics.load(self.run_dir).status
            params = json.loads((self.run_dir / "params.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if status not in ("complete", "partial"):
            return None
        return status if self._same_config(params) else None

    def _same_config(self, params: dict[str, Any]) -> bool:
        if "config_hash" not in params:
            # Written before config hashes were kept: hash the config the run stored.
            try:
                stored = ExperimentConfig.from_toml(self.run_dir / "config.toml")
            except Exception:  # unreadable: cannot vouch for it, redo it
                return False
            params = {**params, "config_hash": config_hash(stored)}
        return params == self.describe()

    def describe(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seed": self.seed,
            "params": self.params,
            "config_hash": config_hash(self.config),
        }


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the base experiment, the grid, the seeds."""

    base: ExperimentConfig
    grid: dict[str, list[Any]]
    seeds: list[int]
    parallel: int
    out: Path
    source: str = ""
    cases: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_toml(cls, path: str | Path, overrides: list[str] | None = None) -> Sweep:
        """Read an experiment file with a ``[sweep]`` table; ConfigError on any problem."""
        file = Path(path)
        if not file.is_file():
            raise ConfigError([f"file {str(file)!r} does not exist"], "sweep")
        try:
            raw = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError([f"not valid TOML: {err}"], f"sweep file {file}") from err
        table = raw.pop("sweep", None)
        if not isinstance(table, dict):
            raise ConfigError(
                [f"{file} has no [sweep] table; add one with a grid, or use `fedunlearn run`"],
                f"sweep file {file}",
            )
        base = ExperimentConfig.from_dict(raw, source=f"sweep file {file}")
        if overrides:
            base = base.with_overrides(overrides)
        return cls.from_table(table, base, source=str(file))

    @classmethod
    def from_table(cls, table: dict[str, Any], base: ExperimentConfig, source: str = "") -> Sweep:
        problems = [
            f"unknown key 'sweep.{k}'; allowed: {', '.join(sorted(SWEEP_KEYS))}"
            for k in table
            if k not in SWEEP_KEYS
        ]
        seeds = table.get("seeds", [base.seed])
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        ):
            problems.append(f"sweep.seeds must be a non-empty list of integers, got {seeds!r}")
        elif len(set(seeds)) != len(seeds):
            problems.append(f"sweep.seeds repeats a seed: {seeds}")
        parallel = table.get("parallel", 1)
        if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
            problems.append(f"sweep.parallel must be an integer >= 1, got {parallel!r}")
        cases = table.get("cases", [])
        if not isinstance(cases, list) or not all(isinstance(c, dict) and c for c in cases):
            problems.append("sweep.cases must be a list of non-empty tables ([[sweep.cases]])")
            cases = []
        grid = table.get("grid", {})
        if not cases and (not isinstance(grid, dict) or not grid):
            problems.append(
                "sweep.grid is empty: give at least one key with a list of values, e.g. "
                '"unlearning.federaser.r" = [0.25, 0.5] (for seeds alone, use fedunlearn compare)'
            )
            grid = {}
        for key, values in grid.items():
            if isinstance(values, dict):
                problems.append(
                    f"sweep.grid.{key} is a table; write the full key in quotes, e.g. "
                    f'"{key}.rounds" = [10, 20]'
                )
            elif not isinstance(values, list) or not values:
                problems.append(
                    f"sweep.grid.{key!r} must be a non-empty list of values, got {values!r}"
                )
            elif len({_canonical(v) for v in values}) != len(values):
                problems.append(f"sweep.grid.{key!r} repeats a value: {values!r}")
        seen: dict[str, int] = {}
        for i, case in enumerate(cases):
            problems += [
                f"sweep.cases[{i}] sets {key!r}, which sweep.grid also sweeps; set it in "
                "the grid or in the cases, not both"
                for key in case
                if isinstance(grid, dict) and key in grid
            ]
            first = seen.setdefault(_canonical(case), i)
            if first != i:
                problems.append(f"sweep.cases[{i}] repeats sweep.cases[{first}]: {case!r}")
        out = Path(table.get("out") or Path(base.output.dir) / "sweeps" / base.name)
        if problems:
            raise ConfigError(problems, "sweep")
        sweep = cls(
            base,
            {k: list(v) for k, v in grid.items()},
            list(seeds),
            parallel,
            out,
            source,
            [dict(c) for c in cases],
        )
        sweep.plan()  # every combination must be a valid experiment
        return sweep

    def plan(self) -> list[PlannedRun]:
        """Every run, checked: a combination that is not a valid experiment is an error
        naming the key and value (nothing runs)."""
        runs: list[PlannedRun] = []
        problems: list[str] = []
        keys = list(self.grid)
        combos = [
            {**case, **dict(zip(keys, values, strict=True))}
            for case in (self.cases or [{}])
            for values in itertools.product(*(self.grid[k] for k in keys))
        ]
        seen: dict[str, dict[str, Any]] = {}
        for params in combos:
            for seed in self.seeds:
                run_id = make_run_id(params, seed)
                if seen.setdefault(run_id, params) is not params:
                    # from_table refuses repeats; this guards sweeps built otherwise.
                    problems.append(f"two combinations are the same run: {params!r}")
                    continue
                run_dir = (self.out / "runs" / run_id).resolve()
                assignments = [f"{k}={toml_value(v)}" for k, v in params.items()]
                assignments += [f"seed={seed}", f"output.run_dir={toml_value(str(run_dir))}"]
                try:
                    config = self.base.with_overrides(assignments)
                    resolve_components(config)
                except ConfigError as err:
                    where = ", ".join(f"{k} = {v!r}" for k, v in params.items())
                    problems += [f"with {where}: {p}" for p in err.problems]
                    continue
                runs.append(PlannedRun(run_id, params, seed, config, run_dir))
        if problems:
            raise ConfigError(sorted(set(problems)), "sweep")
        return runs


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
