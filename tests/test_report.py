"""The sweep report's ROC figures (log-log, averaged over seeds on a log grid), and a
report of run folders written by the real writers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.attacks.metrics import attack_metrics
from fedunlearn.evaluation.leakage import LeakageReport, write_leakage
from fedunlearn.studies.report import roc_figure, tpr_on_grid, write_report


def test_tpr_on_grid_takes_the_best_tpr_at_a_reached_fpr_and_the_segment_between() -> None:
    # Tied scores: three points at FPR 0.1 (TPR 0.2, 0.4, 0.6).
    fpr = [0.0, 0.1, 0.1, 0.1, 0.5, 1.0]
    tpr = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    grid = np.array([0.05, 0.1, 0.3, 0.5, 1.0])
    # 0.05: halfway from (0, 0) to (0.1, 0.2); 0.1: the best there, 0.6; 0.3: halfway
    # from (0.1, 0.6) to (0.5, 0.8); the points themselves at 0.5 and 1.
    np.testing.assert_allclose(tpr_on_grid(fpr, tpr, grid), [0.1, 0.6, 0.7, 0.8, 1.0])


def test_tpr_on_grid_refuses_curves_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="same-length"):
        tpr_on_grid([0.0, 1.0], [0.0, 0.5, 1.0], np.array([0.5]))


def test_roc_figure_is_log_log_from_the_lowest_fpr_every_seed_resolves() -> None:
    import matplotlib.pyplot as plt

    # Seed 0: 1,000 negatives (lowest FPR 0.1%); seed 1: 100 (1%). TPR = sqrt(FPR).
    curves = []
    for lowest in (0.001, 0.01):
        fpr = np.linspace(0, 1, round(1 / lowest) + 1)
        curves.append((list(fpr), list(np.sqrt(fpr)), lowest))
    fig = roc_figure("all runs", {"lira_offline": {"federaser": curves}})
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    mean, chance = ax.get_lines()[0], ax.get_lines()[1]
    assert mean.get_label() == "federaser (2 seeds)" and chance.get_label() == "chance"
    x, y = mean.get_xdata(), mean.get_ydata()
    # Below 1% seed 1 has no operating point: the averaged curve starts there.
    assert x.min() == pytest.approx(0.01) and x.max() == pytest.approx(1.0)
    assert np.allclose(np.diff(np.log(x)), np.log(x[1] / x[0]))  # log-spaced
    # Both seeds pass through (1%, 0.1); elsewhere each seed's straight segments
    # between its points (numpy's interp on its strictly increasing FPRs), averaged.
    assert y[0] == pytest.approx(0.1)
    by_hand = np.mean([np.interp(x, f, t) for f, t, _ in curves], axis=0)
    np.testing.assert_allclose(y, by_hand)
    assert "lowest resolved 1%" in ax.get_xlabel()
    plt.close(fig)


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
