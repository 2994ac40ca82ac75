"""The results folder of a run, its figures, and the table printed at the end.

A run folder holds:

* ``config.toml``: the resolved config (written first, before anything runs);
* ``metrics.json``: audit of every model, costs, requests and decisions, history size,
  package versions;
* ``rounds.csv``: server-side accuracy and attack success rate after every round of
  every phase;
* ``rounds.png``: those curves; ``comparison.png``: the models side by side;
* ``error.txt`` instead of the figures when the run failed (the rounds done so far
  are still in ``rounds.csv``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from fedunlearn.experiment import ExperimentResult

PACKAGES = ("fedunlearn", "flwr", "torch", "numpy", "opacus", "scikit-learn")

AUDIT_ROWS = (
    ("clean_accuracy", "clean accuracy", "{:.3f}"),
    ("forget_accuracy", "accuracy on forgotten data", "{:.3f}"),
    ("attack_success_rate", "canary attack success", "{:.3f}"),
    ("l2_to_reference", "L2 to reference", "{:.3f}"),
    ("kl_to_reference", "KL to reference (forgotten data)", "{:.4f}"),
)
COST_ROWS = (
    ("client_epochs", "client epochs", "{:.1f}"),
    ("rounds", "rounds", "{:.0f}"),
    ("wall_seconds", "wall seconds", "{:.1f}"),
)


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
    columns = ["phase", "round", "accuracy", "attack_success_rate", "seconds"]
    extra = sorted({k for r in rows for k in r} - set(columns))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns + extra, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value)
    return str(value)


def _clean(value: Any) -> Any:
    """NaN becomes null so metrics.json is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_results(result: ExperimentResult) -> None:
    """Write metrics, rounds and figures of a finished run into its folder."""
    run_dir = result.run_dir
    metrics = {**result.metrics, "environment": environment(), "status": "complete"}
    result.metrics = metrics
    (run_dir / "metrics.json").write_text(
        json.dumps(_clean(metrics), indent=2, default=_json_default)
    )
    write_rounds_csv(run_dir / "rounds.csv", result.rounds)
    if result.config.output.figures:
        plot_rounds(result.rounds, run_dir / "rounds.png", title=result.config.name)
        if metrics.get("models"):
            plot_comparison(metrics, run_dir / "comparison.png")


def write_failure(
    run_dir: Path, rows: list[dict[str, Any]], err: BaseException, trace: str
) -> None:
    """Keep what a failed run computed: its rounds so far and the error."""
    write_rounds_csv(run_dir / "rounds.csv", rows)
    (run_dir / "error.txt").write_text(f"{type(err).__name__}: {err}\n\n{trace}")
    (run_dir / "metrics.json").write_text(
        json.dumps({"status": "failed", "error": f"{type(err).__name__}: {err}"}, indent=2)
    )


def plot_rounds(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Accuracy and canary attack success per round, one line per phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = list(dict.fromkeys(r["phase"] for r in rows))
    has_asr = any(r.get("attack_success_rate") is not None for r in rows)
    panels = [("accuracy", "clean test accuracy")]
    if has_asr:
        panels.append(("attack_success_rate", "canary attack success rate"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for phase in phases:
            pts = [
                (r["round"], r[key]) for r in rows if r["phase"] == phase and r.get(key) is not None
            ]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", markersize=3, label=phase)
        ax.set_xlabel("round of the phase")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_comparison(metrics: dict[str, Any], path: Path) -> None:
    """Bar chart of the audited models: accuracy, forgotten-data accuracy, attack success."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = metrics["models"]
    labels = list(models)
    keys = [(k, n) for k, n, _ in AUDIT_ROWS[:3]]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(keys))
    for i, label in enumerate(labels):
        values = [models[label].get(k) for k, _ in keys]
        values = [np.nan if v is None else v for v in values]
        bars = ax.bar(x + (i - (len(labels) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [n for _, n in keys])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share")
    ax.set_title(
        f"{metrics.get('method')} vs {metrics.get('reference')}, forgetting clients "
        f"{metrics.get('forgotten_clients')}"
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def summary_table(metrics: dict[str, Any]) -> Table:
    """The audit and costs of every model as a rich Table."""
    models = metrics.get("models", {})
    costs = metrics.get("cost", {})
    labels = list(models)
    table = Table(
        title=f"{metrics.get('name')} (seed {metrics.get('seed')}): "
        f"forgetting clients {metrics.get('forgotten_clients')}"
    )
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")

    def fmt(value: Any, pattern: str) -> str:
        return (
            "-"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else pattern.format(value)
        )

    for key, name, pattern in AUDIT_ROWS:
        table.add_row(name, *(fmt(models[m].get(key), pattern) for m in labels))
    for key, name, pattern in COST_ROWS:
        row = []
        for m in labels:
            cost = costs.get("training" if m == "original" else m, {})
            row.append(fmt(cost.get(key), pattern))
        table.add_row(name, *row)
    return table


def print_summary(
    metrics: dict[str, Any], run_dir: Path | None = None, console: Console | None = None
) -> None:
    """Print the summary table and the headline comparison."""
    console = console or Console()
    if not metrics.get("models"):
        console.print("No model was unlearned (no accepted request).")
    else:
        console.print(summary_table(metrics))
        method, reference = metrics.get("method"), metrics.get("reference")
        rel = metrics.get("cost", {}).get("relative_to_reference", {}).get(method)
        if rel and method != reference and rel.get("client_epochs"):
            console.print(
                f"{method} used {1 / rel['client_epochs']:.1f}x fewer client epochs than "
                f"{reference}; history kept {metrics['history']['bytes'] / 1e6:.2f} MB."
            )
    refused = [r for r in metrics.get("requests", []) if not r["accepted"]]
    for r in refused:
        console.print(f"[yellow]refused request[/] from client {r['requester']}: {r['reason']}")
    if run_dir is not None:
        console.print(f"Results: {run_dir}")
