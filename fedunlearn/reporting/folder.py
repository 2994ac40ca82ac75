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
    from fedunlearn.run.experiment import ExperimentResult

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
    metrics = {
        **result.metrics,
        "environment": environment(),
        "status": result.metrics.get("status", "complete"),
    }
    result.metrics = metrics
    (run_dir / "metrics.json").write_text(
        json.dumps(_clean(metrics), indent=2, default=_json_default)
    )
    write_rounds_csv(run_dir / "rounds.csv", result.rounds)
    write_comparison(comparison_rows(metrics), run_dir)
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


# acc: clean test accuracy; ASR: canary attack success rate; Δ: minus the reference's;
# forgot acc: accuracy on the forgotten data; L2, KL: to the reference (KL on the
# forgotten data); epochs/ref, time/ref: cost relative to the reference; hist MB: the
# history the method needs the server to keep.
COMPARISON_COLUMNS = (
    ("clean_accuracy", "acc", "{:.3f}"),
    ("clean_accuracy_gap", "Δacc", "{:+.3f}"),
    ("attack_success_rate", "ASR", "{:.3f}"),
    ("attack_success_rate_gap", "ΔASR", "{:+.3f}"),
    ("forget_accuracy", "forgot acc", "{:.3f}"),
    ("l2_to_reference", "L2", "{:.2f}"),
    ("kl_to_reference", "KL", "{:.4f}"),
    ("client_epochs", "epochs", "{:.1f}"),
    ("client_epochs_relative", "epochs/ref", "{:.2f}"),
    ("wall_seconds_relative", "time/ref", "{:.2f}"),
    ("history_mb", "hist MB", "{:.2f}"),
)
"""Columns of the comparison table: gaps are the model minus the reference."""


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def comparison_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per audited model (original, each method, the reference): its audit, its
    gaps to the reference, its cost relative to the reference, the history it needs."""
    models = metrics.get("models", {})
    reference = metrics.get("reference")
    if reference not in models:
        return []
    ref = models[reference]
    cost = metrics.get("cost", {})
    relative = cost.get("relative_to_reference", {})
    needed = metrics.get("history", {}).get("bytes_needed", {})
    rows = []
    for label, audit in models.items():
        spent = cost.get("training" if label == "original" else label, {})
        rel = relative.get(label, {})
        row: dict[str, Any] = {"model": label}
        row.update({k: _number(v) for k, v in audit.items()})
        for key in ("clean_accuracy", "attack_success_rate"):
            row[f"{key}_gap"] = _number(audit.get(key)) - _number(ref.get(key))
        row["client_epochs"] = _number(spent.get("client_epochs"))
        row["rounds"] = _number(spent.get("rounds"))
        row["wall_seconds"] = _number(spent.get("wall_seconds"))
        row["client_epochs_relative"] = _number(rel.get("client_epochs"))
        row["wall_seconds_relative"] = _number(rel.get("wall_seconds"))
        row["history_mb"] = _number(needed.get(label)) / 1e6 if label in needed else float("nan")
        rows.append(row)
    return rows


def write_comparison(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """``comparison.csv`` (every column) and ``comparison.md`` (the table)."""
    if not rows:
        return
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(run_dir / "comparison.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (run_dir / "comparison.md").write_text(markdown_table(rows))


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    header = "| model | " + " | ".join(n for _, n, _ in COMPARISON_COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COMPARISON_COLUMNS)
    lines = [header, rule]
    for r in rows:
        cells = [_fmt(r.get(k), p) for k, _, p in COMPARISON_COLUMNS]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(metrics: dict[str, Any], path: Path) -> None:
    """Three panels: clean accuracy and canary attack success per model (the
    reference as a line), and each method's attack-success gap against its cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison_rows(metrics)
    if not rows:
        return
    reference = metrics["reference"]
    labels = [r["model"] for r in rows]
    colors = [
        "#888888" if m == "original" else "#2a9d8f" if m == reference else "#e76f51" for m in labels
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, title in (
        (axes[0], "clean_accuracy", "clean test accuracy"),
        (axes[1], "attack_success_rate", "canary attack success rate"),
    ):
        values = [r[key] for r in rows]
        bars = ax.bar(range(len(rows)), values, color=colors)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ref_value = next(r[key] for r in rows if r["model"] == reference)
        ax.axhline(ref_value, color="#2a9d8f", linestyle="--", linewidth=1, label=reference)
        ax.set_xticks(range(len(rows)), labels, rotation=35, ha="right")
        ax.set_ylim(0, 1.1)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    for r in rows:
        if r["model"] in ("original", reference):
            continue
        x = r["client_epochs_relative"]
        x = x if x and not math.isnan(x) and x > 0 else 1e-3
        ax.scatter(x, abs(r["attack_success_rate_gap"]), color="#e76f51")
        ax.annotate(
            r["model"],
            (x, abs(r["attack_success_rate_gap"])),
            fontsize=8,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"client epochs relative to {reference} (log; 0 drawn at 0.001)")
    ax.set_ylabel(f"|attack success - {reference}'s|")
    ax.set_title("forgetting against cost")
    ax.grid(alpha=0.3)
    forgotten = metrics.get("forgotten", {})
    fig.suptitle(
        f"{metrics.get('name')} (seed {metrics.get('seed')}): forgetting "
        f"clients {forgotten.get('clients', [])}"
        + (f", records of {list(forgotten.get('records', {}))}" if forgotten.get("records") else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def summary_table(metrics: dict[str, Any]) -> Table:
    """One row per model: audit, gaps to the reference, cost, history needed."""
    forgotten = metrics.get("forgotten", {})
    what = ", ".join(
        [f"client {c}" for c in forgotten.get("clients", [])]
        + [f"{len(i)} records of client {c}" for c, i in forgotten.get("records", {}).items()]
    )
    table = Table(title=f"{metrics.get('name')} (seed {metrics.get('seed')}): forgetting {what}")
    table.add_column("model")
    for _, name, _ in COMPARISON_COLUMNS:
        table.add_column(name, justify="right")
    for r in comparison_rows(metrics):
        table.add_row(r["model"], *(_fmt(r.get(k), p) for k, _, p in COMPARISON_COLUMNS))
    return table


def print_summary(
    metrics: dict[str, Any], run_dir: Path | None = None, console: Console | None = None
) -> None:
    """Print the comparison table, errors and refused requests."""
    console = console or Console()
    if not metrics.get("models"):
        console.print("No model was unlearned (no accepted request).")
    else:
        console.print(summary_table(metrics))
        reference = metrics.get("reference")
        relative = metrics.get("cost", {}).get("relative_to_reference", {})
        for method in metrics.get("methods", []):
            rel = relative.get(method, {})
            if rel.get("client_epochs"):
                console.print(
                    f"{method}: {1 / rel['client_epochs']:.1f}x fewer client epochs than "
                    f"{reference}"
                )
    for label, reason in metrics.get("errors", {}).items():
        console.print(f"[yellow]{label} not run:[/] {reason}")
    for r in metrics.get("requests", []):
        if not r["accepted"]:
            console.print(f"[yellow]refused request[/] from client {r['requester']}: {r['reason']}")
    if run_dir is not None:
        console.print(f"Results: {run_dir}")
