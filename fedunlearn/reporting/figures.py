"""Figures of a run: curves per round, and the models side by side.

The panels are shared with summaries over seeds (:mod:`fedunlearn.studies.summary`),
which draw the same bars with error bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.reporting.tables import comparison_rows, forgotten_text, with_interval

ORIGINAL_COLOR, REFERENCE_COLOR, METHOD_COLOR = "#888888", "#2a9d8f", "#e76f51"


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def model_colors(labels: Sequence[str], reference: str) -> list[str]:
    """Grey for the original model, green for the reference, orange for methods."""
    return [
        ORIGINAL_COLOR if m == "original" else REFERENCE_COLOR if m == reference else METHOD_COLOR
        for m in labels
    ]


def bar_panel(
    ax: Any,
    labels: Sequence[str],
    values: Sequence[float],
    reference: str,
    title: str,
    errors: Sequence[float] | None = None,
) -> None:
    """One figure per model as bars, the reference's value as a dashed line."""
    bars = ax.bar(
        range(len(labels)),
        values,
        yerr=errors,
        color=model_colors(labels, reference),
        capsize=3 if errors is not None else 0,
    )
    if errors is None:
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    if reference in labels:
        ref_value = values[list(labels).index(reference)]
        ax.axhline(ref_value, color=REFERENCE_COLOR, linestyle="--", linewidth=1, label=reference)
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)


def cost_panel(
    ax: Any,
    points: Sequence[tuple[str, float, float, float]],
    reference: str,
) -> None:
    """Each method's |attack-success gap to the reference| against its client epochs
    relative to the reference: ``(label, relative cost, gap, gap error)`` points.

    The cost axis is linear up to 0.01 and logarithmic above (so a server-only method,
    at cost 0, has a place), and always spans the reference's cost of 1, however few
    points there are.
    """
    drawn = [(label, x, y, e) for label, x, y, e in points if not math.isnan(x)]
    for label, x, y, error in drawn:
        ax.errorbar(x, y, yerr=error or None, fmt="o", color=METHOD_COLOR, capsize=3)
        ax.annotate(label, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.axvline(1.0, color=REFERENCE_COLOR, linestyle="--", linewidth=1, label=reference)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, max([1.0, *(x for _, x, _, _ in drawn)]) * 2)
    top = max([0.0, *(y + (e or 0) for _, _, y, e in drawn if not math.isnan(y))])
    ax.set_ylim(-0.02, max(0.1, top * 1.15))
    ax.set_xlabel(f"client epochs relative to {reference} (log above 0.01)")
    ax.set_ylabel(f"|attack success - {reference}'s|")
    ax.set_title("forgetting against cost")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_rounds(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Accuracy and canary attack success per round, one line per phase."""
    plt = pyplot()
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


def plot_comparison(metrics: RunMetrics, path: Path) -> None:
    """Three panels: clean accuracy and canary attack success per model (the
    reference as a line), and each method's attack-success gap against its cost."""
    rows = comparison_rows(metrics)
    if not rows:
        return
    plt = pyplot()
    reference = metrics.reference
    labels = [r["model"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bar_panel(
        axes[0], labels, [r["clean_accuracy"] for r in rows], reference, "clean test accuracy"
    )
    bar_panel(
        axes[1],
        labels,
        [r["attack_success_rate"] for r in rows],
        reference,
        "canary attack success rate",
    )
    cost_panel(
        axes[2],
        [
            (r["model"], r["client_epochs_relative"], abs(r["attack_success_rate_gap"]), 0.0)
            for r in rows
            if r["model"] not in ("original", reference)
        ],
        reference,
    )
    fig.suptitle(
        f"{metrics.name} (seed {metrics.seed}): forgetting {forgotten_text(metrics.forgotten)}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def attack_roc_figure(
    roc: dict[str, dict[str, dict[str, list[float]]]],
    attacks: dict[str, dict[str, dict[str, Any]]],
) -> Any:
    """ROC curves of every attack on every model on log-log axes (Carlini et al.,
    "Membership inference attacks from first principles"), where the low-FPR regime
    that matters for privacy is visible; the chance line dotted, the lowest FPR the
    negatives resolve (1 / negatives) dashed. Points at FPR or TPR 0 have no place on
    log axes. Returns the matplotlib figure (one panel per attack)."""
    plt = pyplot()
    names = sorted(roc)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.6), squeeze=False)
    for ax, attack in zip(axes[0], names, strict=True):
        floor, bottom = 1.0, 1.0
        for label, curve in sorted(roc[attack].items()):
            figures = attacks.get(attack, {}).get(label, {})
            fpr, tpr = np.asarray(curve["fpr"]), np.asarray(curve["tpr"])
            shown = (fpr > 0) & (tpr > 0)
            floor = min(floor, float(fpr[fpr > 0].min(initial=1.0)))
            bottom = min(bottom, float(tpr[tpr > 0].min(initial=1.0)))
            auc = with_interval(figures, "auc", "{:.2f}")
            ax.plot(fpr[shown], tpr[shown], label=f"{label} (AUC {auc})")
        log_roc_axes(ax, attack, floor, bottom)
    fig.tight_layout()
    return fig


def log_roc_axes(ax: Any, title: str, floor: float, bottom: float) -> None:
    """Dress a ROC panel on log-log axes: the chance line dotted, the lowest resolved
    FPR ``floor`` dashed, both axes from below ``floor`` (or the lowest TPR drawn,
    ``bottom``) to 1, the legend. Shared by the run's and the study's ROC figures.

    Parameters
    ----------
    ax : matplotlib Axes
        The panel, its curves drawn.
    title : str
        The panel's title (the attack).
    floor : float
        The lowest FPR resolved (the x-axis starts below it).
    bottom : float
        The lowest TPR drawn (the y-axis starts below it or ``floor``).
    """
    ax.plot([floor, 1], [floor, 1], "k:", linewidth=1, label="chance")
    ax.axvline(floor, color="#999999", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor / 1.5, 1.05)
    ax.set_ylim(min(floor, bottom) / 1.5, 1.05)
    ax.set_title(title)
    ax.set_xlabel(f"false positive rate (log; lowest resolved {100 * floor:.3g}%)")
    ax.set_ylabel("true positive rate (log)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, which="both")


def plot_attack_roc(
    roc: dict[str, dict[str, dict[str, list[float]]]],
    attacks: dict[str, dict[str, dict[str, Any]]],
    path: Path,
) -> None:
    """:func:`attack_roc_figure` saved to ``path`` (nothing without curves)."""
    if not roc:
        return
    fig = attack_roc_figure(roc, attacks)
    fig.savefig(path, dpi=130)
    pyplot().close(fig)
