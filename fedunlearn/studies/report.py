"""``fedunlearn report RESULTS_DIR``: a Markdown report of a sweep (or a comparison).

Reads ``results.csv`` (one row per run and method) and writes into the same folder:

* ``report.md``: for every parameter combination and method, the main metrics as
  mean ± std over seeds; when the runs have calibrated attacks (``[audit]``), the
  sections "Calibrated attacks" and "Distance to the retrain ensemble"
  (:mod:`.audit_report`); the figures below, embedded;
* ``report_<metric>.png``: each metric against each swept numeric parameter, one line
  per method (error bars: std over seeds), the reference dashed;
* ``report_tradeoff.png``: privacy (or the first swept parameter) against forgetting,
  coloured by clean accuracy;
* ``report_roc.png`` (one swept combination) or ``report_roc_<n>.png`` (one per
  combination): ROC curves of the attacks, where attacks ran, averaged over seeds on
  log-log axes from the lowest resolvable FPR.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.studies.audit_report import calibrated_section, distance_section
from fedunlearn.studies.roc import plot_roc

METRICS = (
    ("clean_accuracy", "clean accuracy"),
    ("attack_success_rate", "canary attack success"),
    ("attack_success_rate_gap", "attack success gap to reference"),
    ("kl_to_reference", "KL to reference"),
    ("client_epochs_relative", "client epochs / reference"),
)
"""Metrics tabulated and plotted when present (attack and privacy columns are added)."""

EXTRA_METRICS = (
    ("poison_success_rate", "poison ASR"),
    ("monitor_rejections", "monitor rejections"),
    ("training_epsilon", "epsilon (training)"),
    ("released_accuracy", "released accuracy"),
    ("original_mia_auc", "MIA AUC on original"),
    ("mia_auc", "MIA AUC (baseline)"),
    ("reference_mia_auc", "MIA AUC on reference"),
    ("gap_auc", "unlearning-gap attack AUC"),
    ("reference_gap_auc", "unlearning-gap AUC on reference"),
    ("epsilon", "epsilon with unlearning"),
)

FIXED = {"run_id", "seed", "method"}


class ReportError(ValueError):
    """The folder holds nothing a report can be made from."""


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """``results.csv`` as dicts, numbers parsed."""
    file = folder / "results.csv"
    if not file.is_file():
        raise ReportError(
            f"{folder} has no results.csv; point to the output folder of `fedunlearn sweep`"
        )
    with open(file, newline="") as handle:
        rows = [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    if not rows:
        raise ReportError(f"{file} holds no row: no run completed")
    return rows


def _parse(text: str) -> Any:
    if text in ("", "nan"):
        return float("nan")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parameters(rows: list[dict[str, Any]], folder: Path) -> list[str]:
    """The swept keys (from ``sweep.json`` when present)."""
    meta = folder / "sweep.json"
    if not meta.is_file():
        return []
    sweep = json.loads(meta.read_text())
    keys = [k for case in sweep.get("cases", []) for k in case]
    return list(dict.fromkeys([*keys, *sweep.get("grid", {})]))


def _setting(row: dict[str, Any], param: str) -> Any:
    """A row's value of a swept parameter, "-" when its case does not set it (a blank
    cell reads back as NaN, and NaN never equals itself, so it cannot be a group key)."""
    value = row.get(param, "-")
    return "-" if isinstance(value, float) and math.isnan(value) else value


def _baseline_name(rows: list[dict[str, Any]], params: list[str], missing: str) -> str:
    """How the rows without ``missing`` differ: the other swept settings they share
    (``privacy.mode = none``), else "without <missing>"."""
    shared = []
    for p in params:
        values = {str(_setting(r, p)) for r in rows}
        if p != missing and len(values) == 1 and values != {"-"}:
            shared.append(f"{p} = {values.pop()}")
    return ", ".join(shared) or f"without {missing.rsplit('.', 1)[-1]}"


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.array([v for v in values if isinstance(v, int | float) and not math.isnan(v)])
    if not len(arr):
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std())


def _fmt(mean: float, std: float, runs: int) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" + (f" ± {std:.3f}" if runs > 1 else "")


def write_report(folder: str | Path) -> Path:
    """Write ``report.md`` and its figures into ``folder``; returns the report path."""
    folder = Path(folder)
    rows = read_rows(folder)
    params = parameters(rows, folder)
    metrics = [(k, n) for k, n in (*METRICS, *EXTRA_METRICS) if any(k in r for r in rows)]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((*(_setting(row, p) for p in params), row["method"]), []).append(row)
    lines = [f"# Report: {folder.name}", ""]
    lines.append(
        f"{len({r['run_id'] for r in rows})} runs, {len(rows)} rows; seeds "
        f"{sorted({r['seed'] for r in rows})}. Cells: mean ± std over seeds."
    )
    lines += ["", "| " + " | ".join([*params, "method", "runs", *[n for _, n in metrics]]) + " |"]
    lines.append("|" + "---|" * (len(params) + 2 + len(metrics)))
    for key, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        cells = [str(v) for v in key] + [str(len(members))]
        for column, _ in metrics:
            mean, std = _mean_std([m.get(column, float("nan")) for m in members])
            cells.append(_fmt(mean, std, len(members)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    control = next((p for p in params if p.rsplit(".", 1)[-1] == "control"), None)
    if control is not None:
        lines += threat_effects(rows, control, [p for p in params if p != control])
    figures = plot_metrics(rows, params, metrics, folder)
    tradeoff = plot_tradeoff(rows, params, folder)
    for figure in [*figures, tradeoff]:
        if figure is not None:
            lines += [f"![{figure.stem}]({figure.name})", ""]
    lines += calibrated_section(folder, rows, params, _setting)
    lines += distance_section(folder, rows, params, _setting)
    for label, figure in plot_roc(folder, rows, params, _setting):
        lines += [f"ROC curves, {label}:", "", f"![{figure.stem}]({figure.name})", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _numeric(rows: list[dict[str, Any]], key: str) -> bool:
    """A swept key with at least two numeric values (rows without it are baselines)."""
    values = {r.get(key) for r in rows if _finite(r.get(key))}
    others = [r.get(key) for r in rows if not _finite(r.get(key))]
    return len(values) > 1 and all(v is None or isinstance(v, float) for v in others)


def plot_metrics(
    rows: list[dict[str, Any]], params: list[str], metrics: list[tuple[str, str]], folder: Path
) -> list[Path]:
    """One figure per metric: metric against each numeric swept parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    swept = [p for p in params if _numeric(rows, p)]
    if not swept:
        return []
    out = []
    methods = sorted({r["method"] for r in rows})
    for column, name in metrics:
        if not any(isinstance(r.get(column), int | float) for r in rows):
            continue
        fig, axes = plt.subplots(1, len(swept), figsize=(5.5 * len(swept), 4), squeeze=False)
        for ax, param in zip(axes[0], swept, strict=True):
            xs = sorted({r[param] for r in rows if _finite(r.get(param))})
            for i, method in enumerate(methods):
                color = f"C{i}"
                mine = [r for r in rows if r["method"] == method]
                stats = [_mean_std([r.get(column) for r in mine if r.get(param) == x]) for x in xs]
                ax.errorbar(
                    xs,
                    [s[0] for s in stats],
                    yerr=[s[1] for s in stats],
                    marker="o",
                    capsize=3,
                    label=method,
                    color=color,
                )
                # Rows without this parameter (e.g. "no DP") are drawn as a baseline.
                base_rows = [r for r in mine if not _finite(r.get(param))]
                base = [r.get(column) for r in base_rows]
                if base:
                    ax.axhline(
                        _mean_std(base)[0],
                        color=color,
                        linestyle=":",
                        label=f"{method}, {_baseline_name(base_rows, params, param)}",
                    )
            ref = f"reference_{column}"
            if any(ref in r for r in rows):
                stats = [_mean_std([r.get(ref) for r in rows if r.get(param) == x]) for x in xs]
                ax.plot(xs, [s[0] for s in stats], "k--", label="reference")
            ax.set_xlabel(param)
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"report_{column}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        out.append(path)
    return out


def plot_tradeoff(rows: list[dict[str, Any]], params: list[str], folder: Path) -> Path | None:
    """Privacy (or the first swept parameter) against forgetting, coloured by accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = "epsilon" if any(isinstance(r.get("epsilon"), int | float) for r in rows) else None
    x_key = x_key or next((p for p in params if _numeric(rows, p)), None)
    if x_key is None or not any("attack_success_rate_gap" in r for r in rows):
        return None
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    markers = "os^Dvp*hX"
    handles = []
    methods = [m for m in sorted({r["method"] for r in rows}) if m != "original"]
    sc = None
    for i, method in enumerate(methods):
        pts = [r for r in rows if r["method"] == method and _finite(r.get(x_key))]
        if not pts:
            continue
        marker = markers[i % len(markers)]
        sc = ax.scatter(
            [r.get(x_key) for r in pts],
            [abs(r.get("attack_success_rate_gap", float("nan"))) for r in pts],
            c=[r.get("clean_accuracy") for r in pts],
            cmap="viridis",
            vmin=0,
            vmax=1,
            marker=marker,
            edgecolors="k",
            linewidths=0.4,
        )
        # The points are coloured by accuracy: the legend shows the shape only.
        handles.append(Line2D([], [], marker=marker, color="gray", linestyle="", label=method))
    if sc is None:
        plt.close(fig)
        return None
    fig.colorbar(sc, ax=ax, label="clean accuracy")
    ax.set_xlabel(x_key)
    ax.set_ylabel("|attack success - reference's|")
    ax.set_title("privacy against forgetting, coloured by accuracy (one point per run)")
    ax.legend(handles=handles, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = folder / "report_tradeoff.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


THREAT_COLUMNS = (
    ("accuracy_change", "Δ clean acc (unlearned - original)"),
    ("attack_success_rate", "canary ASR"),
    ("poison_success_rate", "poison ASR"),
    ("client_epochs", "client epochs"),
)


def threat_effects(rows: list[dict[str, Any]], control: str, others: list[str]) -> list[str]:
    """Attack against control (a swept role option named ``control``, such as
    ``roles.malicious-unlearner.control``), paired by seed and method: each figure under
    attack and under control, and the cost multiplier attack / control."""
    for row in rows:
        row["accuracy_change"] = row.get("clean_accuracy", float("nan")) - row.get(
            "original_clean_accuracy", float("nan")
        )
    pairs: dict[tuple, dict[bool, dict[str, Any]]] = {}
    for row in rows:
        key = (*(_setting(row, p) for p in others), row["method"], row["seed"])
        pairs.setdefault(key, {})[str(row[control]).lower() == "true"] = row
    groups: dict[tuple, list[dict[bool, dict[str, Any]]]] = {}
    for key, pair in pairs.items():
        if len(pair) == 2:
            groups.setdefault(key[:-1], []).append(pair)
    header = [*others, "method", "seeds"]
    for _, name in THREAT_COLUMNS:
        header += [f"{name}: attack", f"{name}: control"]
    header.append("cost multiplier (epochs attack / control)")
    lines = ["## Malicious unlearning against an honest control", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for key, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        cells = [str(v) for v in key] + [str(len(members))]
        for column, _ in THREAT_COLUMNS:
            for side in (False, True):
                mean, std = _mean_std([m[side].get(column, float("nan")) for m in members])
                cells.append(_fmt(mean, std, len(members)))
        ratios = [
            m[False].get("client_epochs", float("nan")) / m[True]["client_epochs"]
            for m in members
            if m[True].get("client_epochs")
        ]
        mean, std = _mean_std(ratios)
        cells.append(_fmt(mean, std, len(ratios)))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]
