"""Comparing methods over seeds: per-seed runs, mean and spread, the summary files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.studies.compare import compare
from fedunlearn.studies.summary import summarise
from tests.conftest import small_config


def test_summarise_gives_mean_and_population_std_per_group() -> None:
    rows = [
        {"model": "a", "seed": 0, "x": 1.0, "y": float("nan")},
        {"model": "a", "seed": 1, "x": 3.0, "y": 2.0},
        {"model": "b", "seed": 0, "x": 5.0, "y": 1.0},
    ]
    by_model = {r["model"]: r for r in summarise(rows)}
    assert by_model["a"]["runs"] == 2
    assert by_model["a"]["x_mean"] == 2.0 and by_model["a"]["x_std"] == 1.0
    assert by_model["a"]["y_mean"] == 2.0  # NaN left out
    assert by_model["b"]["x_std"] == 0.0


def test_compare_runs_every_seed_and_writes_the_summary(tmp_path: Path) -> None:
    config = small_config(tmp_path, 'unlearning.methods=["federaser", "fedaccum"]')
    result = compare(config, [0, 1], out_dir=tmp_path / "cmp", show_progress=False)
    out = result.out_dir
    for name in ("summary.md", "summary.csv", "runs.csv", "summary.png"):
        assert (out / name).is_file(), name
    assert (out / "seed0" / "metrics.json").is_file() and (out / "seed1" / "metrics.json").is_file()
    with open(out / "runs.csv") as handle:
        runs = list(csv.DictReader(handle))
    assert {(r["model"], r["seed"]) for r in runs} == {
        (m, s) for m in ("original", "federaser", "fedaccum", "retrain") for s in ("0", "1")
    }
    federaser = [float(r["clean_accuracy"]) for r in runs if r["model"] == "federaser"]
    row = next(r for r in result.summary if r["model"] == "federaser")
    assert row["clean_accuracy_mean"] == pytest.approx(np.mean(federaser))
    assert "| federaser | 2 |" in result.markdown and "±" in result.markdown
