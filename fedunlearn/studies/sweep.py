"""Sweeps: a grid over config keys and seeds, resumable, sharing what runs share.

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

* runs that differ only in unlearning methods or their options share one training and
  one retraining reference (:func:`fedunlearn.experiment.run_group`);
* runs with the same clients share one simulation start-up (one Ray start, data
  loaded once per client process);
* with ``parallel > 1`` independent simulations run in separate processes.

Every run keeps its own folder under ``<out>/runs/``; ``<out>/results.csv`` is the
tidy table (one row per run and method: its parameters, seed, audit, gaps to the
reference and relative cost). ``fedunlearn report <out>`` turns it into a report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console

from fedunlearn.config.experiment import ConfigError, ExperimentConfig, digest
from fedunlearn.reporting.folder import comparison_rows
from fedunlearn.run.components import resolve_components
from fedunlearn.run.experiment import training_key
from fedunlearn.studies.summary import write_csv

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
        try:
            metrics = json.loads((self.run_dir / "metrics.json").read_text())
            params = json.loads((self.run_dir / "params.json").read_text())
        except (OSError, ValueError):
            return False
        if metrics.get("status") != "complete":
            return False
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


MACHINE_KEYS = {
    "output": ("dir", "run_dir", "verbose", "figures"),
    "simulation": ("client_cpus",),
    "federation": ("timeout", "connect_timeout"),
    "history": ("path",),
}
"""Config keys left out of :func:`config_hash`: where results go, CPUs per client,
time-outs, log verbosity and figures; they do not change a run's metrics."""


def _set_aside(run_dir: Path) -> None:
    """Move a stale run folder to ``runs/.stale/<id>-<n>`` (nothing if it is empty)."""
    if not run_dir.exists():
        return
    if not any(run_dir.iterdir()):
        run_dir.rmdir()
        return
    stale = run_dir.parent / ".stale"
    stale.mkdir(exist_ok=True)
    n = 1
    while (stale / f"{run_dir.name}-{n}").exists():
        n += 1
    run_dir.rename(stale / f"{run_dir.name}-{n}")


def config_hash(config: ExperimentConfig) -> str:
    """A digest of the full resolved config but :data:`MACHINE_KEYS`: two runs with the
    same hash compute the same thing."""
    raw = config.to_dict()
    for section, keys in MACHINE_KEYS.items():
        for key in keys:
            raw.get(section, {}).pop(key, None)
    return digest(raw)


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
                run_id = _run_id(params, seed)
                if seen.setdefault(run_id, params) is not params:
                    # from_table refuses repeats; this guards sweeps built otherwise.
                    problems.append(f"two combinations are the same run: {params!r}")
                    continue
                run_dir = (self.out / "runs" / run_id).resolve()
                assignments = [f"{k}={_toml_value(v)}" for k, v in params.items()]
                assignments += [f"seed={seed}", f"output.run_dir={_toml_value(str(run_dir))}"]
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


def _toml_value(value: Any) -> str:
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _run_id(params: dict[str, Any], seed: int) -> str:
    """Readable and stable: the seed and a digest of the grid values. The base config is
    not part of it; an edited base reuses the folder and :meth:`PlannedRun.is_complete`
    sees the changed config hash."""
    hashed = hashlib.sha256(json.dumps([params, seed], sort_keys=True).encode()).hexdigest()
    return f"seed{seed}-{hashed[:10]}"


@dataclass
class SweepResult:
    """What a sweep did: runs done now, skipped as complete, failed; the results table."""

    out: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def group_runs(runs: list[PlannedRun]) -> list[list[list[PlannedRun]]]:
    """Runs in simulations: each simulation a list of groups sharing training; groups of
    one simulation share the clients and backend."""
    groups: dict[str, list[PlannedRun]] = {}
    for run in runs:
        groups.setdefault(training_key(run.config), []).append(run)
    simulations: dict[tuple, list[list[PlannedRun]]] = {}
    for group in groups.values():
        c = group[0].config
        simulations.setdefault((c.federation.num_clients, c.simulation), []).append(group)
    return list(simulations.values())


def run_sweep(
    sweep: Sweep, *, show_progress: bool = False, console: Console | None = None
) -> SweepResult:
    """Run what is not complete yet, then write ``results.csv`` and ``sweep.json``."""
    console = console or Console()
    sweep.out.mkdir(parents=True, exist_ok=True)
    planned = sweep.plan()
    result = SweepResult(sweep.out)
    todo = []
    for run in planned:
        (result.skipped if run.is_complete() else todo).append(run)
    result.skipped = [r.run_id for r in result.skipped]
    console.print(
        f"sweep {sweep.base.name}: {len(planned)} runs, {len(result.skipped)} already "
        f"complete, {len(todo)} to run"
    )
    for run in todo:
        # Whatever the folder holds is stale (failed, cut short, or from another config):
        # move it aside (never delete results), so an interrupted redo cannot pass for
        # complete with old metrics.
        _set_aside(run.run_dir)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "params.json").write_text(json.dumps(run.describe(), indent=2))
    done = _run_simulations(group_runs(todo), sweep.parallel, show_progress, console)
    for run_id, error in done.items():
        if error:
            result.failed[run_id] = error
        else:
            result.ran.append(run_id)
    result.rows = collect_rows(planned)
    if result.rows:
        write_csv(result.rows, sweep.out / "results.csv")
    (sweep.out / "sweep.json").write_text(
        json.dumps(
            {
                "name": sweep.base.name,
                "source": sweep.source,
                "grid": sweep.grid,
                "cases": sweep.cases,
                "seeds": sweep.seeds,
                "runs": [r.describe() for r in planned],
                "failed": result.failed,
            },
            indent=2,
            default=str,
        )
    )
    console.print(
        f"ran {len(result.ran)}, skipped {len(result.skipped)}, failed {len(result.failed)}; "
        f"results: {sweep.out / 'results.csv'}"
    )
    for run_id, error in result.failed.items():
        console.print(f"[red]failed[/] {run_id}: {error}")
    return result


def _run_simulations(
    simulations: list[list[list[PlannedRun]]],
    parallel: int,
    show_progress: bool,
    console: Console,
) -> dict[str, str]:
    """Run every simulation (in worker processes when ``parallel > 1``); the error of
    each run, empty when it completed."""
    if parallel <= 1 or len(simulations) <= 1:
        out: dict[str, str] = {}
        for simulation in simulations:
            out.update(_run_simulation(simulation, show_progress, console.print))
        return out
    out = {}
    with ProcessPoolExecutor(max_workers=parallel) as pool:
        for status in pool.map(_run_simulation_quietly, simulations):
            out.update(status)
    return out


def _run_simulation_quietly(groups: list[list[PlannedRun]]) -> dict[str, str]:
    return _run_simulation(groups, False, lambda *_: None)


def _run_simulation(
    groups: list[list[PlannedRun]], show_progress: bool, say: Callable[..., None]
) -> dict[str, str]:
    """One simulated federation running ``groups`` one after another."""
    from fedunlearn.apps.simulation import simulate_groups

    def report(index: int, outcome: Any) -> None:
        names = ", ".join(r.run_id for r in groups[index])
        say(f"[red]failed[/] {names}: {outcome.error}" if outcome.error else f"done: {names}")

    outcomes = simulate_groups(
        [[r.config for r in g] for g in groups],
        [[r.run_dir for r in g] for g in groups],
        show_progress=show_progress,
        on_group=report,
    )
    return {
        run.run_id: outcome.error
        for group, outcome in zip(groups, outcomes, strict=True)
        for run in group
    }


def collect_rows(runs: list[PlannedRun]) -> list[dict[str, Any]]:
    """The tidy table: one row per complete run and model (each method, the reference,
    the original; the reference's and original's figures also as ``reference_*`` and
    ``original_*`` columns of every row)."""
    rows = []
    for run in runs:
        if not run.is_complete():
            continue
        metrics = json.loads((run.run_dir / "metrics.json").read_text())
        by_model = {r["model"]: r for r in comparison_rows(metrics)}
        reference = metrics.get("reference")
        # Every method, then the reference and the original model as rows of their own.
        for method in [*metrics.get("methods", []), reference, "original"]:
            if method not in by_model:
                continue
            row: dict[str, Any] = {
                "run_id": run.run_id,
                **run.params,
                "seed": run.seed,
                "method": method,
            }
            row.update({k: v for k, v in by_model[method].items() if k != "model"})
            for other in ("original", reference):
                if other in by_model:
                    prefix = "original" if other == "original" else "reference"
                    row.update(
                        {f"{prefix}_{k}": v for k, v in by_model[other].items() if k != "model"}
                    )
            row.update(extra_metrics(metrics, method))
            rows.append(row)
    return rows


def extra_metrics(metrics: dict[str, Any], method: str) -> dict[str, Any]:
    """Further per-method columns other phases add to ``metrics.json`` (attacks, privacy)."""
    out: dict[str, Any] = {}
    for name, value in metrics.get("table_columns", {}).get(method, {}).items():
        out[name] = value
    return out
