"""The results folder of a run.

A run folder holds:

* ``status.json``: the run's state, from its first moment: ``running`` (with the
  process id), then ``complete``, ``partial``, ``failed`` or ``interrupted``; always
  replaced whole (written to a temporary file and renamed);
* ``config.toml``: the resolved config (written first, before anything runs);
* ``metrics.json``: :class:`~fedunlearn.reporting.schema.RunMetrics`: audit of every
  model, costs, requests and decisions, history size, package versions;
* ``rounds.csv``: server-side accuracy and attack success rate after every round of
  every phase (and client-side training loss);
* ``models.npz``: the final weights of every model (``original``, each method, the
  reference), keyed ``<label>/<param>`` (:mod:`fedunlearn.reporting.models`), so
  ``fedunlearn audit RUN_DIR`` can redo the leakage audit without training;
* ``rounds.png``: those curves; ``comparison.md``, ``comparison.csv``,
  ``comparison.png``: the models side by side;
* with ``[attack] enabled``: ``attacks.json`` (attack figures and ROC curves),
  ``attacks.md`` (figures with their 95% intervals), ``attacks_roc.png`` (log-log ROC
  curves) and ``attack_scores.npz`` (every score with its truth, record id and holder:
  :mod:`fedunlearn.evaluation.archive`, recipe in ``docs/threats.md``);
* ``error.txt`` when the run failed (the rounds done so far are still in
  ``rounds.csv``), ``errors/<name>.txt`` for a method or step that failed alone.

``metrics.json`` is written last, whole, then the state: a ``complete`` run always has
every file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import subprocess
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fedunlearn.reporting.figures import plot_comparison, plot_rounds
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.reporting.tables import comparison_rows, write_comparison


class RunFolderError(ValueError):
    """A run folder cannot be read as asked (missing, unfinished, a file absent or
    corrupt); the message names the folder or file."""


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


STATES = ("running", "complete", "partial", "failed", "interrupted")


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` whole: a reader sees the old text or the new, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_status(run_dir: Path, state: str, **details: Any) -> None:
    """``status.json``: the run's state, this process, when."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}; one of {STATES}")
    record = {
        "state": state,
        "pid": os.getpid(),
        "updated": datetime.now().isoformat(timespec="seconds"),
        **details,
    }
    write_text(run_dir / "status.json", json.dumps(record, indent=2))


def run_state(run_dir: Path) -> str:
    """The state of a run folder: ``running`` only while its process lives (a run whose
    process was killed is ``interrupted``); ``unknown`` for a folder without a state."""
    try:
        record = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return "unknown"
    state = str(record.get("state", "unknown"))
    if state == "running" and not _alive(int(record.get("pid", -1))):
        return "interrupted"
    return state


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_results(
    run_dir: Path,
    metrics: RunMetrics,
    rounds: list[dict[str, Any]],
    *,
    figures: bool = True,
) -> None:
    """Write a finished run's rounds, tables and figures, then its metrics, then its
    state."""
    metrics.environment = environment()
    write_rounds_csv(run_dir / "rounds.csv", rounds)
    write_comparison(comparison_rows(metrics), run_dir)
    if figures:
        plot_rounds(rounds, run_dir / "rounds.png", title=metrics.name)
        if metrics.models:
            plot_comparison(metrics, run_dir / "comparison.png")
    write_text(run_dir / "metrics.json", metrics.dumps())
    write_status(run_dir, metrics.status)


def write_failure(
    run_dir: Path, rows: list[dict[str, Any]], error: str, trace: str, state: str = "failed"
) -> None:
    """Keep what a failed (or interrupted) run computed: its rounds so far and the
    error."""
    write_rounds_csv(run_dir / "rounds.csv", rows)
    write_text(run_dir / "error.txt", f"{error}\n\n{trace}")
    write_text(run_dir / "metrics.json", json.dumps({"status": "failed", "error": error}, indent=2))
    write_status(run_dir, state, error=error)


def write_error(run_dir: Path, name: str, text: str) -> None:
    """Keep one part's failure in ``errors/<name>.txt`` beside the results."""
    errors_dir = run_dir / "errors"
    errors_dir.mkdir(exist_ok=True)
    (errors_dir / f"{name}.txt").write_text(text)
