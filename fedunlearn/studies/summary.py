"""Mean and spread over seeds: tables and figures from many runs' comparison rows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.reporting.figures import bar_panel, cost_panel, pyplot
from fedunlearn.reporting.tables import COMPARISON_COLUMNS, PRIVACY_COLUMNS


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
    """The comparison columns (and epsilon, under DP) as ``mean ± std`` in a Markdown
    table."""
    extra = tuple(c for c in PRIVACY_COLUMNS if any(f"{c[0]}_mean" in r for r in summary))
    columns = COMPARISON_COLUMNS + extra
    header = f"| {label} | runs | " + " | ".join(n for _, n, _ in columns) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(columns)]
    for row in summary:
        cells = [_cell(row, k, p) for k, _, p in columns]
        lines.append(f"| {row[label]} | {row['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_summary(
    summary: list[dict[str, Any]], reference: str, path: Path, title: str = ""
) -> None:
    """Clean accuracy and canary attack success per model (mean ± std), and each
    method's attack-success gap to the reference against its relative cost."""
    plt = pyplot()
    labels = [r["model"] for r in summary]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, key, name in (
        (axes[0], "clean_accuracy", "clean test accuracy"),
        (axes[1], "attack_success_rate", "canary attack success rate"),
    ):
        bar_panel(
            ax,
            labels,
            [r.get(f"{key}_mean", np.nan) for r in summary],
            reference,
            f"{name} (mean ± std)",
            errors=[r.get(f"{key}_std", 0.0) for r in summary],
        )
    cost_panel(
        axes[2],
        [
            (
                r["model"],
                r.get("client_epochs_relative_mean", np.nan),
                abs(r.get("attack_success_rate_gap_mean", np.nan)),
                r.get("attack_success_rate_gap_std", 0.0),
            )
            for r in summary
            if r["model"] not in ("original", reference)
        ],
        reference,
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
