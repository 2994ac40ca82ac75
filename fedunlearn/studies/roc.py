"""A study's ROC figures: each attack's curves on log-log axes, every model's curve
averaged over seeds on a log-spaced FPR grid from the lowest FPR every seed resolves,
one figure per combination of swept settings (``report_roc.png``, ``report_roc_<n>.png``).
The panels are dressed as a run's ``attacks_roc.png``
(:func:`fedunlearn.reporting.figures.log_roc_axes`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.reporting.figures import log_roc_axes, pyplot


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _combination(key: tuple, params: list[str]) -> str:
    if not params:
        return "all runs"
    return ", ".join(f"{p} = {v}" for p, v in zip(params, key, strict=True))


Curve = tuple[list[float], list[float], float]
"""One run's ROC curve of an attack on a model: FPR, TPR, the lowest FPR it resolves."""

PANELS_PER_ROW = 4
"""Attacks side by side in a study's ROC figure."""

GRID_POINTS = 200
"""Points of the log-spaced FPR grid the seeds' curves are averaged on."""


def tpr_on_grid(fpr: Any, tpr: Any, grid: np.ndarray) -> np.ndarray:
    """A ROC curve's TPR at each FPR of ``grid``: at an FPR the curve reaches, its best
    TPR there (the ``tpr_at_1pct`` of the tables); between two FPRs, the straight line
    from the best TPR at the lower to the first at the higher (the segment drawn).

    Parameters
    ----------
    fpr, tpr : array-like
        The curve's points in threshold order (``roc_curve``: FPR non-decreasing,
        repeated across tied scores).
    grid : ndarray
        The FPRs to read the curve at.
    """
    fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    if fpr.shape != tpr.shape or fpr.ndim != 1 or not len(fpr):
        raise ValueError(f"fpr {fpr.shape} and tpr {tpr.shape} must be one same-length curve")
    last = len(fpr) - 1
    # The last point at or below each grid FPR carries the best TPR there (TPR grows).
    right = np.clip(np.searchsorted(fpr, grid, side="right"), 0, last)
    left = np.clip(right - 1, 0, last)
    span = fpr[right] - fpr[left]
    safe = np.where(span > 0, span, 1.0)
    frac = np.where(span > 0, np.clip((grid - fpr[left]) / safe, 0.0, 1.0), 0.0)
    return tpr[left] + frac * (tpr[right] - tpr[left])


def _lowest_fpr(figures: dict[str, Any], fpr: list[float]) -> float:
    """The lowest FPR a run resolves: ``lowest_fpr`` of its figures, else (files written
    before it was kept) the lowest non-zero FPR of its curve."""
    value = figures.get("lowest_fpr")
    if _finite(value) and value > 0:
        return float(value)
    positive = [f for f in fpr if f > 0]
    return min(positive) if positive else 1.0


def roc_figure(label: str, by_attack: dict[str, dict[str, list[Curve]]]) -> Any:
    """ROC curves of one combination on log-log axes, one panel per attack, one curve per
    model averaged over its seeds on a log-spaced FPR grid from the highest of the
    seeds' lowest resolvable FPRs (below it some seed has no operating point) to 1.

    Parameters
    ----------
    label : str
        The combination of swept settings (the figure's title).
    by_attack : dict
        Attack -> model -> the runs' curves (:data:`Curve`, one per seed).
    """
    plt = pyplot()
    # Four panels a row: a calibrated run has eight attacks.
    cols = min(PANELS_PER_ROW, len(by_attack))
    rows = math.ceil(len(by_attack) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.flat[len(by_attack) :]:
        ax.set_visible(False)
    for ax, (attack, by_model) in zip(axes.flat, sorted(by_attack.items()), strict=False):
        floor, bottom = 1.0, 1.0
        for model, runs in sorted(by_model.items()):
            resolved = max(run[2] for run in runs)
            grid = np.geomspace(resolved, 1.0, GRID_POINTS) if resolved < 1 else np.ones(1)
            tprs = np.mean([tpr_on_grid(f, t, grid) for f, t, _ in runs], axis=0)
            shown = tprs > 0  # TPR 0 has no place on a log axis
            floor = min(floor, resolved)
            bottom = min(bottom, float(tprs[shown].min(initial=1.0)))
            seeds = "seed" if len(runs) == 1 else "seeds"
            ax.plot(grid[shown], tprs[shown], label=f"{model} ({len(runs)} {seeds})")
        log_roc_axes(ax, attack, floor, bottom)
    fig.suptitle(f"ROC: {label}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_roc(
    folder: Path, rows: list[dict[str, Any]], params: list[str], setting: Any
) -> list[tuple[str, Path]]:
    """ROC curves from the complete runs' ``attacks.json`` files: one figure per
    combination of swept parameters (curves of different settings, e.g. release modes,
    are never averaged together), one panel per attack, each curve averaged over seeds
    on log-log axes (:func:`roc_figure`). Returns (combination, figure) pairs.

    Parameters
    ----------
    folder : Path
        The sweep folder (runs under ``runs/<run_id>``); the figures go there.
    rows : list of dict
        ``results.csv`` rows (``run_id`` and the swept keys).
    params : list of str
        The swept keys.
    setting : callable
        ``setting(row, key)``: a row's value of a swept key.
    """
    combination: dict[str, tuple] = {}
    for row in rows:
        combination.setdefault(str(row["run_id"]), tuple(setting(row, p) for p in params))
    # combination -> attack -> model -> curves (one per run, i.e. per seed)
    curves: dict[tuple, dict[str, dict[str, list[Curve]]]] = {}
    for run_id, key in sorted(combination.items()):
        file = folder / "runs" / run_id / "attacks.json"
        if not file.is_file():
            continue
        data = json.loads(file.read_text())
        for attack, by_model in data.get("roc", {}).items():
            for model, curve in by_model.items():
                figures = data.get("metrics", {}).get(attack, {}).get(model, {})
                lowest = _lowest_fpr(figures, curve["fpr"])
                curves.setdefault(key, {}).setdefault(attack, {}).setdefault(model, []).append(
                    (curve["fpr"], curve["tpr"], lowest)
                )
    for stale in folder.glob("report_roc*.png"):
        stale.unlink()
    out: list[tuple[str, Path]] = []
    ordered = sorted(curves.items(), key=lambda kv: tuple(map(str, kv[0])))
    for n, (key, by_attack) in enumerate(ordered, start=1):
        label = _combination(key, params)
        fig = roc_figure(label, by_attack)
        path = folder / ("report_roc.png" if len(ordered) == 1 else f"report_roc_{n}.png")
        fig.savefig(path, dpi=120)
        pyplot().close(fig)
        out.append((label, path))
    return out
