"""Sweeps: planning and validation, resume, reuse of shared training, the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fedunlearn.config import ConfigError
from fedunlearn.study_report import write_report
from fedunlearn.sweep import Sweep, group_runs, run_sweep
from tests.conftest import small_config

SWEEP = """
name = "tiny"
seed = 0
[data]
dataset = "digits"
[federation]
num_clients = 4
[model]
name = "mlp"
hidden = 32
[training]
rounds = 3
local_epochs = 1
[canary]
trigger_size = 2
[simulation]
backend = "inline"
[unlearning]
methods = ["federaser"]
[output]
figures = false

[sweep]
seeds = [0, 1]
out = "{out}"
[sweep.grid]
"unlearning.federaser.r" = [0.25, 1.0]
"""


def write_sweep(tmp_path: Path, text: str = SWEEP) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text.replace("{out}", str(tmp_path / "out")))
    return path


def test_plan_crosses_grid_and_seeds_and_groups_runs_sharing_training(tmp_path: Path) -> None:
    sweep = Sweep.from_toml(write_sweep(tmp_path))
    runs = sweep.plan()
    assert len(runs) == 4
    assert {(r.params["unlearning.federaser.r"], r.seed) for r in runs} == {
        (0.25, 0),
        (0.25, 1),
        (1.0, 0),
        (1.0, 1),
    }
    assert runs[0].config.unlearning.options_for("federaser") == {"r": 0.25}
    simulations = group_runs(runs)
    assert len(simulations) == 1  # same clients: one start-up
    groups = simulations[0]
    assert sorted(len(g) for g in groups) == [2, 2]  # per seed, both ratios share training
    assert all(len({r.seed for r in g}) == 1 for g in groups)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.replace(
                '"unlearning.federaser.r" = [0.25, 1.0]', '"training.roundz" = [1, 2]'
            ),
            "unknown key 'training.roundz'",
        ),
        (
            lambda s: s.replace('"unlearning.federaser.r" = [0.25, 1.0]', '"training.rounds" = []'),
            "must be a non-empty list",
        ),
        (
            lambda s: s.replace('[sweep.grid]\n"unlearning.federaser.r" = [0.25, 1.0]', ""),
            "sweep.grid is empty",
        ),
        (lambda s: s.replace("seeds = [0, 1]", "seeds = []"), "sweep.seeds must be a non-empty"),
        (
            lambda s: s.replace("seeds = [0, 1]", "seeds = [0, 1]\nrepeat = 2"),
            "unknown key 'sweep.repeat'",
        ),
        (lambda s: s.replace("[0.25, 1.0]", "[0.25, 7.0]"), "r must be a number in (0, 1]"),
    ],
)
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path: Path, edit, message) -> None:
    path = write_sweep(tmp_path, edit(SWEEP))
    with pytest.raises(ConfigError) as err:
        Sweep.from_toml(path)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()


def test_sweep_runs_resumes_and_redoes_partial_runs(tmp_path: Path) -> None:
    sweep = Sweep.from_toml(write_sweep(tmp_path))
    first = run_sweep(sweep)
    assert len(first.ran) == 4 and not first.failed and not first.skipped
    with open(tmp_path / "out" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12  # 4 runs x (federaser, retrain, original)
    assert {
        "unlearning.federaser.r",
        "seed",
        "method",
        "clean_accuracy",
        "reference_clean_accuracy",
        "original_attack_success_rate",
    } <= set(rows[0])
    # A run cut short: its metrics say it failed. A resume redoes it and only it.
    victim = sweep.plan()[1]
    (victim.run_dir / "metrics.json").write_text(json.dumps({"status": "failed"}))
    second = run_sweep(sweep)
    assert second.ran == [victim.run_id]
    assert len(second.skipped) == 3
    third = run_sweep(sweep)
    assert third.ran == [] and len(third.skipped) == 4


def test_shared_training_gives_the_same_metrics_as_separate_runs(tmp_path: Path) -> None:
    from fedunlearn.simulation import simulate

    sweep = Sweep.from_toml(write_sweep(tmp_path))
    run_sweep(sweep)
    for run in sweep.plan():
        shared = json.loads((run.run_dir / "metrics.json").read_text())
        alone = simulate(
            run.config.with_overrides([f"output.run_dir={tmp_path / 'alone' / run.run_id}"]),
            show_progress=False,
        ).metrics
        assert shared["models"] == alone["models"]
        assert (
            shared["cost"]["retrain"]["client_epochs"] == alone["cost"]["retrain"]["client_epochs"]
        )


def test_same_seed_gives_the_same_metrics_twice(tmp_path: Path) -> None:
    from fedunlearn.simulation import simulate

    config = small_config(tmp_path, 'unlearning.methods=["federaser", "fedrecovery"]')
    a = simulate(config.with_overrides([f"output.run_dir={tmp_path / 'a'}"]), show_progress=False)
    b = simulate(config.with_overrides([f"output.run_dir={tmp_path / 'b'}"]), show_progress=False)
    assert a.metrics["models"] == b.metrics["models"]


def test_report_writes_tables_and_figures(tmp_path: Path) -> None:
    sweep = Sweep.from_toml(write_sweep(tmp_path))
    run_sweep(sweep)
    report = write_report(tmp_path / "out")
    text = report.read_text()
    assert "| unlearning.federaser.r | method | runs |" in text
    assert "| 0.25 | federaser | 2 |" in text and "±" in text
    assert (tmp_path / "out" / "report_clean_accuracy.png").is_file()
    assert "report_clean_accuracy.png" in text
