"""The results folder of a run.

A run folder holds:

* ``config.toml``: the resolved config (written first, before anything runs);
* ``metrics.json``: :class:`~fedunlearn.reporting.schema.RunMetrics`: audit of every
  model, costs, requests and decisions, history size, package versions;
* ``rounds.csv``: server-side accuracy and attack success rate after every round of
  every phase (and client-side training loss);
* ``rounds.png``: those curves; ``comparison.md``, ``comparison.csv``,
  ``comparison.png``: the models side by side;
* ``error.txt`` when the run failed (the rounds done so far are still in
  ``rounds.csv``), ``errors/<name>.txt`` for a method or step that failed alone.
"""

from __future__ import annotations

import contextlib
import csv
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fedunlearn.reporting.figures import plot_comparison, plot_rounds
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.reporting.tables import comparison_rows, write_comparison

PACKAGES = ("fedunlearn", "flwr", "torch", "numpy", "opacus", "scikit-learn")


def environment() -> dict[str, Any]:
    """Package versions, Python, platform and git commit (when in a checkout)."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            or None
        )
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
    }


def write_rounds_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rounds.csv``: the fixed columns first, then whatever else the rows hold."""
    columns = ["phase", "round", "accuracy", "attack_success_rate", "seconds"]
    extra = sorted({k for r in rows for k in r} - set(columns))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns + extra, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_results(
    run_dir: Path,
    metrics: RunMetrics,
    rounds: list[dict[str, Any]],
    *,
    figures: bool = True,
) -> None:
    """Write metrics, rounds and figures of a finished run into its folder."""
    metrics.environment = environment()
    (run_dir / "metrics.json").write_text(metrics.dumps())
    write_rounds_csv(run_dir / "rounds.csv", rounds)
    write_comparison(comparison_rows(metrics), run_dir)
    if figures:
        plot_rounds(rounds, run_dir / "rounds.png", title=metrics.name)
        if metrics.models:
            plot_comparison(metrics, run_dir / "comparison.png")


def write_failure(run_dir: Path, rows: list[dict[str, Any]], error: str, trace: str) -> None:
    """Keep what a failed run computed: its rounds so far and the error."""
    write_rounds_csv(run_dir / "rounds.csv", rows)
    (run_dir / "error.txt").write_text(f"{error}\n\n{trace}")
    (run_dir / "metrics.json").write_text(
        json.dumps({"status": "failed", "error": error}, indent=2)
    )


def write_error(run_dir: Path, name: str, text: str) -> None:
    """Keep one part's failure in ``errors/<name>.txt`` beside the results."""
    errors_dir = run_dir / "errors"
    errors_dir.mkdir(exist_ok=True)
    (errors_dir / f"{name}.txt").write_text(text)
