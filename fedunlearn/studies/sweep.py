"""Running a sweep: what is not complete yet, sharing what runs share.

* runs that differ only in unlearning methods or their options share one training and
  one retraining reference (:func:`fedunlearn.run.experiment.run_group`);
* runs with the same clients share one simulation start-up (one Ray start on Ray,
  data loaded once per client process);
* with ``parallel > 1`` independent simulations run in separate processes.

Every run keeps its own folder under ``<out>/runs/``; ``<out>/results.csv`` is the
tidy table (one row per run and method: its parameters, seed, audit, gaps to the
reference and relative cost). The sweep file and its planning: :mod:`.plan`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from fedunlearn.config.identity import training_key
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.reporting.tables import comparison_rows, write_csv
from fedunlearn.studies.plan import PlannedRun, Sweep


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
    """Run what is not complete yet, then write ``results.csv`` and ``sweep.json``.

    One sweep at a time per output folder: a second process gets a SweepBusyError.
    """
    console = console or Console()
    sweep.out.mkdir(parents=True, exist_ok=True)
    with sweep_lock(sweep.out):
        return _run_sweep(sweep, show_progress, console)


class SweepBusyError(RuntimeError):
    """Another sweep is running in the same output folder."""


@contextlib.contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold ``<out>/.sweep.lock`` (an OS lock: it dies with its process)."""
    path = out / ".sweep.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise SweepBusyError(
                f"another fedunlearn sweep ({holder}) is running in {out}; wait for it to "
                "finish, or give this one another sweep.out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_sweep(sweep: Sweep, show_progress: bool, console: Console) -> SweepResult:
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
        console.print(f"[red]failed[/] {run_id}: {escape(error)}")
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
        say(
            f"[red]failed[/] {names}: {escape(outcome.error)}"
            if outcome.error
            else f"done: {names}"
        )

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
    """The tidy table: one row per finished run (complete, or partial: a part failed)
    and model (each method, the reference, the original; the reference's and original's
    figures also as ``reference_*`` and ``original_*`` columns of every row), with the
    run's status and the model's failure, if any (``run_status``, ``error``)."""
    rows = []
    for run in runs:
        status = run.finished()
        if status is None:
            continue
        metrics = RunMetrics.load(run.run_dir)
        by_model = {r["model"]: r for r in comparison_rows(metrics)}
        reference = metrics.reference
        # Every method, then the reference and the original model as rows of their own.
        for method in [*metrics.methods, reference, "original"]:
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
            # A partial run's rows stand (what finished is kept); the failure says why.
            row["run_status"] = status
            row["error"] = str(metrics.errors.get(method, ""))
            rows.append(row)
    return rows


def extra_metrics(metrics: RunMetrics, method: str) -> dict[str, Any]:
    """Further per-method columns other phases add (monitor, privacy, attacks)."""
    return dict(metrics.table_columns.get(method, {}))
