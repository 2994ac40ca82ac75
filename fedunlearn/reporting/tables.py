"""The comparison table: one row per audited model, against the reference.

Rows hold a model's audit, its gaps to the reference, its cost relative to the
reference and the history it needs (:func:`comparison_rows`); they go to
``comparison.csv``, ``comparison.md``, the printed table, sweeps' ``results.csv`` and
summaries over seeds.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from fedunlearn.reporting.schema import RunMetrics

# acc: clean test accuracy; ASR: canary attack success rate; Δ: minus the reference's;
# forgot acc: accuracy on the forgotten data; L2, KL: to the reference (KL on the
# forgotten data); epochs/ref, time/ref: cost relative to the reference; hist MB: the
# history the method needs the server to keep; epsilon (under DP only): the privacy
# accounted for the model.
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
PRIVACY_COLUMNS = (
    ("epsilon", "epsilon", "{:.2f}"),
    ("audited_epsilon", "audited eps", "{:.2f}"),
)
"""Columns added under differential privacy: the epsilon accounted for each model, and
the one-run audit's lower bound (``privacy.audit_canaries``): training's for the
original, each method's release for the others (:func:`audited_epsilon`)."""
CALIBRATED_COLUMNS = (
    ("lira_online_auc", "LiRA AUC", "{:.2f}"),
    ("lira_offline_auc", "LiRA-off AUC", "{:.2f}"),
    ("rmia_offline_auc", "RMIA AUC", "{:.2f}"),
    ("ulira_auc", "U-LiRA AUC", "{:.2f}"),
    ("forgetting_outside", "outside", "{:.3f}"),
    ("forgetting_klom", "KLoM", "{:.3f}"),
    ("forgetting_challenge", "challenge", "{:.3f}"),
)
"""Columns added with reference federations (``[audit]``): calibrated attacks' AUC on
the model, U-LiRA's (method vs retraining) and the forgetting scores against the
retrain ensemble. Every figure of ``table_columns`` goes to ``comparison.csv``."""


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def comparison_rows(metrics: RunMetrics) -> list[dict[str, Any]]:
    """One row per audited model (original, each method, the reference): its audit, its
    gaps to the reference, its cost relative to the reference, the history it needs."""
    if metrics.reference not in metrics.models:
        return []
    ref = metrics.models[metrics.reference]
    needed = metrics.history.bytes_needed if metrics.history else {}
    rows = []
    for label, audit in metrics.models.items():
        spent = metrics.cost.of(label)
        rel = metrics.cost.relative_to_reference.get(label, {})
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
        if metrics.privacy is not None:
            row["epsilon"] = model_epsilon(metrics, label)
        if metrics.dp_audit is not None:
            row["audited_epsilon"] = audited_epsilon(metrics, label)
        row.update(calibrated_figures(metrics, label))
        rows.append(row)
    return rows


def calibrated_figures(metrics: RunMetrics, label: str) -> dict[str, float]:
    """The calibrated attacks' and forgetting figures of ``label`` (``[audit]``; empty
    without reference federations)."""
    prefixes = ("lira_", "rmia_", "ulira_", "client_lira_", "forgetting_")
    columns = metrics.table_columns.get(label, {})
    return {k: _number(v) for k, v in columns.items() if k.startswith(prefixes)}


def model_epsilon(metrics: RunMetrics, label: str) -> float:
    """The epsilon accounted for a model (``metrics.privacy``): the original model's is
    training's, a method's that of training plus its own client work; NaN without DP."""
    privacy = metrics.privacy
    if privacy is None:
        return float("nan")
    if label == "original":
        return _number(privacy.training_epsilon)
    return _number(privacy.epsilon.get(label))


def audited_epsilon(metrics: RunMetrics, label: str) -> float:
    """The one-run DP audit's lower bound for a model: training's for ``original``, the
    release's for a method; NaN where there is none."""
    audit = metrics.dp_audit or {}
    entry = audit.get("training") if label == "original" else audit.get("unlearning", {}).get(label)
    return _number((entry or {}).get("epsilon_lower"))


def table_columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The columns shown for ``rows``: the comparison's, and epsilon under DP."""
    extra = tuple(c for c in PRIVACY_COLUMNS + CALIBRATED_COLUMNS if any(c[0] in r for r in rows))
    return COMPARISON_COLUMNS + extra


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Rows as CSV, every column any row has."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_comparison(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """``comparison.csv`` (every column) and ``comparison.md`` (the table)."""
    if not rows:
        return
    write_csv(rows, run_dir / "comparison.csv")
    (run_dir / "comparison.md").write_text(markdown_table(rows))


def fmt(value: Any, pattern: str) -> str:
    """A figure as text; ``-`` for a missing or NaN one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    columns = table_columns(rows)
    header = "| model | " + " | ".join(n for _, n, _ in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule]
    for r in rows:
        cells = [fmt(r.get(k), p) for k, _, p in columns]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def forgotten_text(forgotten: dict[str, Any]) -> str:
    """What was forgotten, in words: ``client 0, 12 records of client 3``."""
    return ", ".join(
        [f"client {c}" for c in forgotten.get("clients", [])]
        + [f"{len(i)} records of client {c}" for c, i in forgotten.get("records", {}).items()]
    )


def summary_table(metrics: RunMetrics) -> Table:
    """One row per model: audit, gaps to the reference, cost, history needed."""
    what = forgotten_text(metrics.forgotten)
    table = Table(title=f"{metrics.name} (seed {metrics.seed}): forgetting {what}")
    table.add_column("model")
    rows = comparison_rows(metrics)
    columns = table_columns(rows)
    for _, name, _ in columns:
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(r["model"], *(fmt(r.get(k), p) for k, _, p in columns))
    return table


# ---------------------------------------------------------------- attacks

ATTACK_COLUMNS = (
    ("auc", "AUC [95% CI]", "{:.2f}"),
    ("tpr_at_1pct", "TPR@1%FPR [95% CI]", "{:.3f}"),
    ("tpr_at_01pct", "TPR@0.1%FPR [95% CI]", "{:.3f}"),
    ("advantage", "advantage [95% CI]", "{:.2f}"),
)
"""Figures of the attack table, each with its bootstrap interval when there is one."""


def with_interval(figures: dict[str, Any], key: str, pattern: str) -> str:
    """A figure and its interval as ``0.62 [0.58, 0.66]``; the figure alone without an
    interval; ``-`` when it is missing (a TPR at an FPR the negatives cannot resolve)."""
    value = figures.get(key)
    text = fmt(value, pattern)
    if text == "-":
        return text
    low, high = figures.get(f"{key}_ci_low"), figures.get(f"{key}_ci_high")
    if fmt(low, pattern) == "-" or fmt(high, pattern) == "-":
        return text
    return f"{text} [{pattern.format(low)}, {pattern.format(high)}]"


def percent(value: Any) -> str:
    """A rate as a percentage (``0.02`` -> ``2%``); ``-`` when missing."""
    if fmt(value, "{}") == "-":
        return "-"
    return f"{100 * float(value):.3g}%"


def attack_rows(attacks: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, str]]:
    """One row per attack and model of the ROC-scored attacks (``deletion_client``,
    scored by ranks, has its own figures in ``metrics.json``), as text."""
    rows = []
    for attack in sorted(attacks):
        for model, figures in attacks[attack].items():
            if "auc" not in figures:
                continue
            row = {
                "attack": attack,
                "model": model,
                "positives": fmt(figures.get("positives"), "{:.0f}"),
                "negatives": fmt(figures.get("negatives"), "{:.0f}"),
                "lowest FPR": percent(figures.get("lowest_fpr")),
            }
            for key, name, pattern in ATTACK_COLUMNS:
                row[name] = with_interval(figures, key, pattern)
            rows.append(row)
    return rows


def attack_markdown(attacks: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The attack table in Markdown, with how to read its empty cells."""
    rows = attack_rows(attacks)
    if not rows:
        return ""
    columns = list(rows[0])
    lines = [
        "| " + " | ".join(columns) + " |",
        "|---|---|" + "---:|" * (len(columns) - 2),
        *("| " + " | ".join(r[c] for c in columns) + " |" for r in rows),
        "",
        "TPR at an FPR below the lowest the negatives resolve (1 / negatives) is left "
        "empty (-): it would be the TPR at FPR 0. Intervals: stratified bootstrap, "
        "percentile.",
    ]
    lines += _forgetting_lines(attacks.get("forgetting", {}))
    lines += _client_test_lines(attacks.get("client_lira", {}))
    return "\n".join(lines) + "\n"


FORGETTING_FIGURES = (
    ("outside", "outside [95% CI]", "{:.3f}"),
    ("klom", "Gaussian KLoM [95% CI]", "{:.3f}"),
    ("challenge", "challenge score [95% CI]", "{:.3f}"),
)


def _forgetting_lines(forgetting: dict[str, dict[str, Any]]) -> list[str]:
    """The forgetting scores against the retrain ensemble, one row per method."""
    if not forgetting:
        return []
    names = " | ".join(name for _, name, _ in FORGETTING_FIGURES)
    lines = [
        "",
        "Forgetting against the retrain ensemble (reference federations: their method "
        "models against their retrained models, on the forgotten candidates):",
        "",
        f"| method | records | method seeds | retrained | {names} |",
        "|---|---:|---:|---:|" + "---:|" * len(FORGETTING_FIGURES),
    ]
    for method, figures in forgetting.items():
        cells = [
            fmt(figures.get(k), "{:.0f}") for k in ("records", "method_seeds", "retrained_models")
        ]
        cells += [with_interval(figures, k, p) for k, _, p in FORGETTING_FIGURES]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "outside: share of method outputs outside the ensemble's central interval (an "
        "exact method: about 1 - coverage); KLoM: Gaussian KL per record; challenge: the "
        "NeurIPS 2023 unlearning challenge's score (1: indistinguishable). Intervals: "
        "bootstrap over records.",
    ]
    return lines


def _client_test_lines(client_test: dict[str, dict[str, Any]]) -> list[str]:
    """The per-client test of the forgotten clients, one row per model."""
    if not client_test:
        return []
    lines = [
        "",
        "Did the forgotten client take part? Offline LiRA on its candidates, Fisher's "
        "combination (-log p of 'it did not'; large: it did):",
        "",
        "| model | records | -log p |",
        "|---|---:|---:|",
    ]
    for model, figures in client_test.items():
        lines.append(
            f"| {model} | {fmt(figures.get('records'), '{:.0f}')} | "
            f"{fmt(figures.get('neglog_p'), '{:.2f}')} |"
        )
    return lines


def attack_table(attacks: dict[str, dict[str, dict[str, Any]]], title: str = "attacks") -> Table:
    """The attack table for the console."""
    rows = attack_rows(attacks)
    table = Table(title=title)
    for i, column in enumerate(rows[0] if rows else []):
        table.add_column(column, justify="left" if i < 2 else "right")
    for r in rows:
        table.add_row(*r.values())
    return table
