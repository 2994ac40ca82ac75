"""The report's sections on the calibrated audit: calibrated attacks at low FPR and the
distance to the retrain ensemble, from synthetic sweep folders (no simulation)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from fedunlearn.studies.audit_report import summarize, tpr_cell
from fedunlearn.studies.report import write_report


def figures(auc: float, low: float, high: float, lowest: float, **extra: Any) -> dict:
    """An attack's figures as ``attacks.json`` holds them (TPR intervals made up)."""
    out = {"auc": auc, "auc_ci_low": low, "auc_ci_high": high, "lowest_fpr": lowest}
    for name in ("tpr_at_1pct", "tpr_at_01pct"):
        value = extra.get(name)
        out[name] = value
        out[f"{name}_ci_low"] = None if value is None else value - 0.05
        out[f"{name}_ci_high"] = None if value is None else value + 0.05
    return out


def write_sweep_folder(out: Path, runs: dict[str, dict], rows: list[dict]) -> None:
    """``runs/<id>/attacks.json`` of each run, ``results.csv`` and ``sweep.json``."""
    for run_id, metrics in runs.items():
        (out / "runs" / run_id).mkdir(parents=True)
        (out / "runs" / run_id / "attacks.json").write_text(json.dumps({"metrics": metrics}))
    out.mkdir(exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.json").write_text(json.dumps({"grid": {"release.mode": ["full", "label"]}}))


def calibrated_run(seed: int, shift: float) -> dict:
    """One run's metrics: offline LiRA on every model, online LiRA (50 negatives),
    the baseline, U-LiRA and forgetting on the method."""
    s = shift
    # Seed 1 of the offline attack resolves 0.1% FPR, seed 0 only 0.5%.
    lowest = 0.005 if seed == 0 else 0.001
    offline = {
        m: figures(0.6 + s, 0.5 + s, 0.7 + s, lowest, tpr_at_1pct=0.2 + s, tpr_at_01pct=0.1)
        for m in ("original", "federaser", "retrain")
    }
    online = {m: figures(0.7 + s, 0.6, 0.8, 0.02) for m in ("original", "federaser", "retrain")}
    baseline = {
        m: figures(0.55, 0.5, 0.6, 0.001, tpr_at_1pct=0.02, tpr_at_01pct=0.0)
        for m in ("original", "federaser", "retrain")
    }
    forgetting = {
        "outside": 0.1 + s,
        "outside_ci_low": 0.05 + s,
        "outside_ci_high": 0.15 + s,
        "klom": 1.0 + 10 * s,
        "klom_ci_low": 0.5 + 10 * s,
        "klom_ci_high": 1.5 + 10 * s,
        "challenge": 0.9 - s,
        "challenge_ci_low": 0.8 - s,
        "challenge_ci_high": 1.0 - s,
    }
    return {
        "mia_baseline": baseline,
        "lira_offline": offline,
        "lira_online": online,
        "ulira": {"federaser": figures(0.9 + s, 0.85 + s, 0.95 + s, 0.005)},
        "forgetting": {"federaser": forgetting},
    }


def rows_of(run_id: str, mode: str, seed: int) -> list[dict]:
    return [
        {"run_id": run_id, "release.mode": mode, "seed": seed, "method": m, "clean_accuracy": 0.9}
        for m in ("federaser", "retrain", "original")
    ]


def two_seed_sweep(out: Path) -> None:
    """Mode full: seeds 0 and 1 (shift 0 and 0.2); mode label: seed 0 alone (shift 0.1)."""
    runs = {
        "full-0": calibrated_run(0, 0.0),
        "full-1": calibrated_run(1, 0.2),
        "label-0": calibrated_run(1, 0.1),
    }
    rows = rows_of("full-0", "full", 0) + rows_of("full-1", "full", 1)
    rows += rows_of("label-0", "label", 0)
    write_sweep_folder(out, runs, rows)


def table(text: str, title: str) -> list[str]:
    """The table rows of a report section."""
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


def test_calibrated_section_means_over_seeds_with_the_span_of_their_intervals(
    tmp_path: Path,
) -> None:
    two_seed_sweep(tmp_path)
    text = write_report(tmp_path).read_text()
    lines = table(text, "Calibrated attacks")
    assert lines[0] == (
        "| release.mode | model | attack | seeds | lowest FPR | AUC | TPR@1%FPR | TPR@0.1%FPR |"
    )
    # AUC 0.6 [0.5, 0.7] and 0.8 [0.7, 0.9]: mean 0.7, population std 0.1, envelope
    # [0.5, 0.9]; TPR@1% 0.2 [0.15, 0.25] and 0.4 [0.35, 0.45]. Seed 0 resolves only
    # 0.5% FPR: the TPR at 0.1% is not given, whatever seed 1 says.
    assert (
        "| full | original | LiRA offline | 2 | 0.5% | 0.700 ± 0.100 [0.500, 0.900] "
        "| 0.300 ± 0.100 [0.150, 0.450] | — |"
    ) in lines
    # Online LiRA with 50 negatives resolves 2%: neither TPR.
    assert "| full | federaser | LiRA online | 2 | 2% | 0.800 ± 0.100 [0.600, 0.800] | — | — |" in (
        lines
    )
    # The baseline resolves 0.1% on every seed.
    assert (
        "| full | retrain | loss threshold (baseline) | 2 | 0.1% | 0.550 ± 0.000 [0.500, 0.600] "
        "| 0.020 ± 0.000 [-0.030, 0.070] | 0.000 ± 0.000 [-0.050, 0.050] |"
    ) in lines
    # One seed: its value and its bootstrap interval, no std; it resolves 0.1%.
    assert (
        "| label | original | LiRA offline | 1 | 0.1% | 0.700 [0.600, 0.800] "
        "| 0.300 [0.250, 0.350] | 0.100 [0.050, 0.150] |"
    ) in lines
    # The original first, then the method, then the reference, within a combination.
    models = [line.split(" | ")[1] for line in lines[1:] if line.startswith("| full")]
    assert models == ["original"] * 3 + ["federaser"] * 3 + ["retrain"] * 3
    assert "population std" in text and "bootstrap" in text


def test_distance_section_gives_each_method_its_figures_against_the_ensemble(
    tmp_path: Path,
) -> None:
    two_seed_sweep(tmp_path)
    lines = table(write_report(tmp_path).read_text(), "Distance to the retrain ensemble")
    assert lines[0] == (
        "| release.mode | method | seeds | U-LiRA AUC | outside fraction | KLoM | challenge |"
    )
    # Seeds shift 0 and 0.2: U-LiRA 0.9 and 1.1, outside 0.1 and 0.3, KLoM 1 and 3,
    # challenge 0.9 and 0.7.
    assert lines[1:] == [
        "| full | federaser | 2 | 1.000 ± 0.100 [0.850, 1.150] | 0.200 ± 0.100 [0.050, 0.350] "
        "| 2.000 ± 1.000 [0.500, 3.500] | 0.800 ± 0.100 [0.600, 1.000] |",
        "| label | federaser | 1 | 1.000 [0.950, 1.050] | 0.200 [0.150, 0.250] "
        "| 2.000 [1.500, 2.500] | 0.800 [0.700, 0.900] |",
    ]


def test_sections_read_results_csv_columns_when_a_run_has_no_attacks_json(
    tmp_path: Path,
) -> None:
    rows = []
    for seed, auc in ((0, 0.6), (1, 0.8)):
        rows.append(
            {
                "run_id": f"r{seed}",
                "seed": seed,
                "method": "federaser",
                "lira_offline_auc": auc,
                "lira_offline_auc_ci_low": auc - 0.1,
                "lira_offline_auc_ci_high": auc + 0.1,
                "lira_offline_tpr_at_1pct": 0.1,
                "lira_offline_lowest_fpr": 0.001,
                "forgetting_klom": 2 * auc,
                "mia_auc": 0.5,
            }
        )
    with open(tmp_path / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = write_report(tmp_path).read_text()
    lines = table(text, "Calibrated attacks")
    # Without intervals for the TPR (old columns): the mean ± std alone; no TPR@0.1%.
    assert (
        "| federaser | LiRA offline | 2 | 0.1% | 0.700 ± 0.100 [0.500, 0.900] | 0.100 ± 0.000 | — |"
        in lines
    )
    # The baseline's columns say no lowest FPR: its TPR cells stay empty.
    assert "| federaser | loss threshold (baseline) | 2 | — | 0.500 ± 0.000 | — | — |" in lines
    distance = table(text, "Distance to the retrain ensemble")
    assert distance[1] == "| federaser | 2 | — | — | 1.400 ± 0.200 | — |"


def test_report_has_no_audit_sections_without_calibrated_attacks(tmp_path: Path) -> None:
    baseline = {m: figures(0.55, 0.5, 0.6, 0.001) for m in ("federaser", "retrain")}
    write_sweep_folder(
        tmp_path, {"full-0": {"mia_baseline": baseline}}, rows_of("full-0", "full", 0)
    )
    text = write_report(tmp_path).read_text()
    assert "## Calibrated attacks" not in text
    assert "## Distance to the retrain ensemble" not in text


def test_summarize_and_tpr_cell_by_hand() -> None:
    seeds = [
        {"auc": 0.5, "auc_ci_low": 0.4, "auc_ci_high": 0.6, "lowest_fpr": 0.001, "tpr": 0.1},
        {"auc": 0.9, "auc_ci_low": 0.8, "auc_ci_high": 1.0, "lowest_fpr": 0.01, "tpr": 0.3},
    ]
    assert summarize(seeds, "auc") == "0.700 ± 0.200 [0.400, 1.000]"
    # A seed without the figure (an unresolved TPR is null): no mean over the others.
    assert summarize([*seeds, {"auc": None}], "auc") == "—"
    assert tpr_cell(seeds, "tpr", 0.01) == "0.200 ± 0.100"
    # Exactly at the limit resolves; one seed above it does not.
    assert tpr_cell(seeds, "tpr", 0.001) == "—"
    assert tpr_cell(seeds[:1], "tpr", 0.001) == "0.100"
