"""The report's sections on the calibrated audit (``[audit] references``): membership
attacks at low FPR, and the distance of each method to the retrain ensemble.

Figures come from each run's ``attacks.json`` (every model, intervals and ``lowest_fpr``
included), else from the run's ``results.csv`` row (``<attack>_<figure>`` columns).
A cell is the mean over seeds ± the standard deviation over seeds (population std, as
the main table), then in brackets the envelope of the per-seed bootstrap 95%
intervals: from the lowest seed's lower bound to the highest seed's upper bound. A TPR
at an FPR some seed cannot resolve (its ``lowest_fpr`` above the target: too few
negatives) is "—", never the TPR at a coarser FPR passed off as it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.attacks.bootstrap import TOLERANCE
from fedunlearn.evaluation.leakage import COLUMN_NAMES

MEMBERSHIP_ATTACKS = (
    ("mia_baseline", "loss threshold (baseline)"),
    ("lira_online", "LiRA online"),
    ("lira_offline", "LiRA offline"),
    ("rmia_online", "RMIA online"),
    ("rmia_offline", "RMIA offline"),
)
"""Membership attacks of the section: name in ``attacks.json``, name in the report
(their ``results.csv`` columns: :func:`_column_prefix`)."""

TPR_TARGETS = (("tpr_at_1pct", 0.01, "TPR@1%FPR"), ("tpr_at_01pct", 0.001, "TPR@0.1%FPR"))
"""Low-FPR figures of the section: figure, its FPR, header."""

DISTANCE_FIGURES = (
    ("ulira", "auc", "U-LiRA AUC"),
    ("forgetting", "outside", "outside fraction"),
    ("forgetting", "klom", "KLoM"),
    ("forgetting", "challenge", "challenge"),
)
"""Figures against the retrain ensemble: attack in ``attacks.json``, figure, header."""


def _column_prefix(attack: str) -> str:
    """An attack's column prefix in ``results.csv`` (as the leakage audit names them)."""
    return COLUMN_NAMES.get(attack, attack)


MISSING = "—"
"""A cell the runs do not give (an unresolved FPR, an attack that did not run)."""

INTERVAL_NOTE = (
    "Cells: mean ± std over seeds (population std), then [lowest, highest] of the "
    "seeds' 95% bootstrap interval bounds (one seed: its bootstrap interval)."
)


def run_figures(folder: Path, row: dict[str, Any], cache: dict[str, Any]) -> dict[str, dict]:
    """The audit figures of one row's model by attack (``attacks.json`` name).

    Parameters
    ----------
    folder : Path
        The sweep folder (runs under ``runs/<run_id>``).
    row : dict
        A ``results.csv`` row (``run_id`` and ``method``: the model).
    cache : dict
        ``attacks.json`` contents already read, by run id (filled here).
    """
    run_id = str(row["run_id"])
    if run_id not in cache:
        file = folder / "runs" / run_id / "attacks.json"
        cache[run_id] = json.loads(file.read_text()) if file.is_file() else None
    data = cache[run_id]
    if data is not None:
        metrics = data.get("metrics", {})
        return {
            attack: by_model[row["method"]]
            for attack, by_model in metrics.items()
            if row["method"] in by_model
        }
    # No attacks.json (a results.csv moved alone): the row's own columns.
    attacks = [name for name, _ in MEMBERSHIP_ATTACKS] + [a for a, _, _ in DISTANCE_FIGURES]
    out: dict[str, dict] = {}
    for attack in dict.fromkeys(attacks):
        prefix = _column_prefix(attack)
        figures = {k[len(prefix) + 1 :]: v for k, v in row.items() if k.startswith(f"{prefix}_")}
        if any(_finite(v) for v in figures.values()):
            out[attack] = figures
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.array(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def summarize(per_seed: list[dict[str, Any]], figure: str) -> str:
    """A figure over seeds as text: ``mean ± std [low, high]`` (:data:`INTERVAL_NOTE`);
    ``—`` when a seed lacks it, the std left out with one seed, the brackets without
    every seed's interval.

    Parameters
    ----------
    per_seed : list of dict
        Each seed's figures of one attack on one model.
    figure : str
        The figure (``auc``, ``klom``, ...); its interval is ``<figure>_ci_low`` and
        ``<figure>_ci_high``.
    """
    values = [f.get(figure) for f in per_seed]
    if not per_seed or not all(_finite(v) for v in values):
        return MISSING
    mean, std = _mean_std(values)
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if len(values) > 1 else "")
    lows = [f.get(f"{figure}_ci_low") for f in per_seed]
    highs = [f.get(f"{figure}_ci_high") for f in per_seed]
    if all(_finite(v) for v in [*lows, *highs]):
        text += f" [{min(lows):.3f}, {max(highs):.3f}]"
    return text


def lowest_fpr(per_seed: list[dict[str, Any]]) -> float:
    """The lowest FPR every seed resolves (the highest seed's ``lowest_fpr``); NaN when
    a seed does not say."""
    values = [f.get("lowest_fpr") for f in per_seed]
    return max(values) if per_seed and all(_finite(v) for v in values) else float("nan")


def tpr_cell(per_seed: list[dict[str, Any]], figure: str, target: float) -> str:
    """TPR at ``target`` FPR over seeds (:func:`summarize`); ``—`` unless every seed
    resolves ``target`` (known ``lowest_fpr`` at most ``target``)."""
    resolved = lowest_fpr(per_seed)
    if not _finite(resolved) or resolved > target + TOLERANCE:
        return MISSING
    return summarize(per_seed, figure)


def _percent(value: float) -> str:
    return MISSING if not _finite(value) else f"{100 * value:.3g}%"


def _models(rows: list[dict[str, Any]]) -> list[str]:
    """Models in report order: the original, then as ``results.csv`` lists them (each
    method, then the reference)."""
    seen = list(dict.fromkeys(str(r["method"]) for r in rows))
    return (["original"] if "original" in seen else []) + [m for m in seen if m != "original"]


def _group(
    folder: Path, rows: list[dict[str, Any]], params: list[str], setting: Any
) -> dict[tuple, list[dict[str, dict]]]:
    """(combination..., model) -> each seed's figures by attack, combinations sorted."""
    cache: dict[str, Any] = {}
    order = {m: i for i, m in enumerate(_models(rows))}
    groups: dict[tuple, list[dict[str, dict]]] = {}
    for row in rows:
        key = (*(setting(row, p) for p in params), str(row["method"]))
        groups.setdefault(key, []).append(run_figures(folder, row, cache))
    return dict(
        sorted(groups.items(), key=lambda kv: (tuple(map(str, kv[0][:-1])), order[kv[0][-1]]))
    )


def calibrated_section(
    folder: Path, rows: list[dict[str, Any]], params: list[str], setting: Any
) -> list[str]:
    """Markdown lines of "Calibrated attacks": per combination, model and attack, the
    lowest FPR resolved, AUC and TPR at 1% and 0.1% FPR over seeds; no lines when no run
    has a calibrated attack.

    Parameters
    ----------
    folder : Path
        The sweep folder.
    rows : list of dict
        ``results.csv`` rows.
    params : list of str
        The swept keys.
    setting : callable
        ``setting(row, key)``: a row's value of a swept key (``-`` when unset).
    """
    groups = _group(folder, rows, params, setting)
    calibrated = {name for name, _ in MEMBERSHIP_ATTACKS[1:]}
    if not any(calibrated & set(f) for runs in groups.values() for f in runs):
        return []
    header = [*params, "model", "attack", "seeds", "lowest FPR", "AUC"]
    header += [name for _, _, name in TPR_TARGETS]
    lines = ["## Calibrated attacks", "", INTERVAL_NOTE + " " + _TPR_NOTE, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, runs in groups.items():
        for attack, name in MEMBERSHIP_ATTACKS:
            per_seed = [f[attack] for f in runs if attack in f]
            if not per_seed:
                continue
            cells = [*map(str, key), name, str(len(per_seed))]
            cells += [_percent(lowest_fpr(per_seed)), summarize(per_seed, "auc")]
            cells += [tpr_cell(per_seed, figure, fpr) for figure, fpr, _ in TPR_TARGETS]
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


_TPR_NOTE = (
    "Lowest FPR: the highest of the seeds' lowest resolvable FPR (1 / negatives); a TPR "
    "at an FPR below it is —. Seeds: runs where the attack scored the model (offline "
    "attacks skip models without references of their kind)."
)


def distance_section(
    folder: Path, rows: list[dict[str, Any]], params: list[str], setting: Any
) -> list[str]:
    """Markdown lines of "Distance to the retrain ensemble": per combination and method,
    U-LiRA AUC, outside fraction, KLoM and challenge score over seeds; no lines when no
    run has them. Parameters as :func:`calibrated_section`."""
    groups = _group(folder, rows, params, setting)
    attacks = {attack for attack, _, _ in DISTANCE_FIGURES}
    measured = {k: v for k, v in groups.items() if any(attacks & set(f) for f in v)}
    if not measured:
        return []
    header = [*params, "method", "seeds", *(name for *_, name in DISTANCE_FIGURES)]
    lines = [
        "## Distance to the retrain ensemble",
        "",
        INTERVAL_NOTE + " Like retraining: U-LiRA AUC near 0.5, outside fraction near "
        "1 - audit.coverage (more with few references), KLoM near 0, challenge score "
        "near 1 (docs/calibrated.md).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for key, runs in measured.items():
        seeds = len([f for f in runs if attacks & set(f)])
        cells = [*map(str, key), str(seeds)]
        for attack, figure, _ in DISTANCE_FIGURES:
            cells.append(summarize([f[attack] for f in runs if attack in f], figure))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]
