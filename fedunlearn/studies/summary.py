"""Mean and spread over seeds: tables and figures from many runs' comparison rows."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.reporting.folder import COMPARISON_COLUMNS


def summarise(
    rows: Iterable[dict[str, Any]], by: Sequence[str] = ("model",)
) -> list[dict[str, Any]]:
    """Group rows by the ``by`` columns; every numeric column becomes ``<col>_mean`` and
    ``<col>_std`` (population std over the group, NaN-aware), plus ``runs``."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        summary: dict[str, Any] = dict(zip(by, key, strict=True))
        summary["runs"] = len(members)
        numeric = [
            c
            for c in dict.fromkeys(k for m in members for k in m)
            if c not in by and all(_is_number(m.get(c)) for m in members)
        ]
        for column in numeric:
            values = np.array([float(m[column]) for m in members], dtype=np.float64)
            finite = values[~np.isnan(values)]
            summary[f"{column}_mean"] = float(finite.mean()) if len(finite) else float("nan")
            summary[f"{column}_std"] = float(finite.std()) if len(finite) else float("nan")
        out.append(summary)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(row: dict[str, Any], column: str, pattern: str) -> str:
    mean, std = row.get(f"{column}_mean"), row.get(f"{column}_std")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = pattern.format(mean)
    if std and not math.isnan(std) and row.get("runs", 1) > 1:
        text += " ± " + pattern.replace("+", "").format(std)
    return text


def summary_markdown(summary: list[dict[str, Any]], label: str = "model") -> str:
    """The comparison columns as ``mean ± std`` in a Markdown table."""
    header = f"| {label} | runs | " + " | ".join(n for _, n, _ in COMPARISON_COLUMNS) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(COMPARISON_COLUMNS)]
    for row in summary:
        cells = [_cell(row, k, p) for k, _, p in COMPARISON_COLUMNS]
        lines.append(f"| {row[label]} | {row['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_summary(
    summary: list[dict[str, Any]], reference: str, path: Path, title: str = ""
) -> None:
    """Clean accuracy and canary attack success per model (mean ± std), and each
    method's attack-success gap to the reference against its relative cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["model"] for r in summary]
    colors = [
        "#888888" if m == "original" else "#2a9d8f" if m == reference else "#e76f51" for m in labels
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, key, name in (
        (axes[0], "clean_accuracy", "clean test accuracy"),
        (axes[1], "attack_success_rate", "canary attack success rate"),
    ):
        means = [r.get(f"{key}_mean", np.nan) for r in summary]
        stds = [r.get(f"{key}_std", 0.0) for r in summary]
        ax.bar(range(len(summary)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(range(len(summary)), labels, rotation=35, ha="right")
        ax.set_ylim(0, 1.1)
        ax.set_title(f"{name} (mean ± std)")
        ax.grid(axis="y", alpha=0.3)
    ax = axes[2]
    for r in summary:
        if r["model"] in ("original", reference):
            continue
        x = r.get("client_epochs_relative_mean", np.nan)
        x = x if x and not math.isnan(x) and x > 0 else 1e-3
        y = abs(r.get("attack_success_rate_gap_mean", np.nan))
        ax.errorbar(
            x,
            y,
            yerr=r.get("attack_success_rate_gap_std", 0.0),
            fmt="o",
            color="#e76f51",
            capsize=3,
        )
        ax.annotate(r["model"], (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"client epochs relative to {reference} (log; 0 drawn at 0.001)")
    ax.set_ylabel(f"|attack success - {reference}'s|")
    ax.set_title("forgetting against cost")
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
