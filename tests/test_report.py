"""The sweep report of run folders as the real writers leave them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fedunlearn.attacks.metrics import attack_metrics
from fedunlearn.evaluation.leakage import LeakageReport, write_leakage
from fedunlearn.studies.report import write_report


def real_run(run_dir: Path, seed: int) -> list[dict]:
    """A run folder as a calibrated run writes it (``write_leakage``, figures of
    ``attack_metrics`` with bootstrap intervals), and its ``results.csv`` rows (the
    table columns of :meth:`LeakageReport.columns_for`)."""
    rng = np.random.default_rng(seed)
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    roc: dict[str, dict[str, dict[str, list[float]]]] = {}
    models = ("original", "federaser", "retrain")
    # Online attacks score 50 members against 50 others (lowest FPR 2%); offline ones
    # against 1,000 (0.1%).
    for attack, negatives in (("mia_baseline", 1000), ("lira_online", 50), ("lira_offline", 1000)):
        for shift, model in enumerate(models):
            truth = np.r_[np.ones(50), np.zeros(negatives)]
            scores = rng.normal(size=truth.size) + truth * (1.0 - 0.4 * shift)
            m = attack_metrics(scores, truth, resamples=50, seed=seed)
            metrics.setdefault(attack, {})[model] = m.summary()
            roc.setdefault(attack, {})[model] = {"fpr": m.fpr, "tpr": m.tpr}
    truth = np.r_[np.ones(100), np.zeros(200)]
    ulira = attack_metrics(rng.normal(size=300) + truth, truth, resamples=50, seed=seed)
    metrics["ulira"] = {"federaser": ulira.summary()}
    roc["ulira"] = {"federaser": {"fpr": ulira.fpr, "tpr": ulira.tpr}}
    metrics["forgetting"] = {
        "federaser": {"outside": 0.2, "outside_ci_low": 0.1, "outside_ci_high": 0.3, "klom": 1.5}
    }
    report = LeakageReport(metrics, roc, {"references": 4.0})
    run_dir.mkdir(parents=True)
    write_leakage(report, run_dir)
    rows = []
    for model in ("federaser", "retrain", "original"):
        columns = (
            report.calibrated_columns(model)
            if model == "original"
            else report.columns_for(model, "retrain")
        )
        rows.append({"run_id": run_dir.name, "seed": seed, "method": model, **columns})
    return rows


def test_report_of_run_folders_written_by_the_real_writers(tmp_path: Path) -> None:
    rows = real_run(tmp_path / "runs" / "r0", 0) + real_run(tmp_path / "runs" / "r1", 1)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(tmp_path / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    text = write_report(tmp_path).read_text()
    assert "## Calibrated attacks" in text and "## Distance to the retrain ensemble" in text
    assert (tmp_path / "report_roc.png").is_file() and "report_roc.png" in text
    # 50 negatives never resolve 1% FPR; 1,000 resolve 0.1%.
    assert "| original | LiRA online | 2 | 2% |" in text
    online = [line for line in text.splitlines() if "| LiRA online |" in line]
    assert online and all(line.endswith("| — | — |") for line in online)
    offline = [line for line in text.splitlines() if "| LiRA offline |" in line]
    assert len(offline) == 3 and not any("—" in line for line in offline)
    # The results.csv columns carry the TPR intervals and the lowest FPR too.
    assert {"lira_offline_tpr_at_01pct_ci_low", "lira_offline_lowest_fpr"} <= set(fields)
    assert {"mia_tpr_at_1pct_ci_high", "mia_tpr_at_01pct_ci_low"} <= set(fields)
