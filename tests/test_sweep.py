"""Sweeps: planning and validation, resume, reuse of shared training, the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.config.options import ConfigError
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.studies.plan import Sweep
from fedunlearn.studies.report import write_report
from fedunlearn.studies.sweep import group_runs, run_sweep
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
        (
            lambda s: s.replace(
                "[sweep.grid]", '[[sweep.cases]]\n"unlearning.federaser.r" = 0.5\n[sweep.grid]'
            ),
            "sweep.cases[0] sets 'unlearning.federaser.r', which sweep.grid also sweeps",
        ),
        (
            lambda s: s.replace(
                "[sweep.grid]",
                '[[sweep.cases]]\n"training.rounds" = 2\n'
                '[[sweep.cases]]\n"training.rounds" = 2\n[sweep.grid]',
            ),
            "sweep.cases[1] repeats sweep.cases[0]",
        ),
        (
            lambda s: s.replace("[0.25, 1.0]", "[0.25, 0.25]"),
            "sweep.grid.'unlearning.federaser.r' repeats a value",
        ),
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


def test_a_partial_runs_rows_stay_in_the_table_with_the_failure(tmp_path: Path) -> None:
    text = SWEEP.replace(
        'methods = ["federaser"]',
        'methods = ["federaser", "tests.methods:Broken"]',
    ).replace("seeds = [0, 1]", "seeds = [0]")
    sweep = Sweep.from_toml(write_sweep(tmp_path, text))
    result = run_sweep(sweep)
    assert len(result.ran) == 2
    assert all(run.finished() == "partial" for run in sweep.plan())
    assert not any(run.is_complete() for run in sweep.plan())  # the sweep redoes them
    with open(tmp_path / "out" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    # What finished is reported; the method that raised has no model, so no row (a
    # method whose model collapsed keeps its row, its failure in "error").
    assert len(rows) == 6 and {r["run_status"] for r in rows} == {"partial"}
    assert {r["method"] for r in rows} == {"federaser", "retrain", "original"}
    assert all(r["error"] == "" for r in rows)


def test_shared_training_gives_the_same_metrics_as_separate_runs(tmp_path: Path) -> None:
    from fedunlearn.apps.simulation import simulate

    sweep = Sweep.from_toml(write_sweep(tmp_path))
    run_sweep(sweep)
    for run in sweep.plan():
        shared = RunMetrics.load(run.run_dir)
        alone = simulate(
            run.config.with_overrides([f"output.run_dir={tmp_path / 'alone' / run.run_id}"]),
            show_progress=False,
        ).metrics
        assert shared.models == alone.models
        assert shared.cost.methods["retrain"] == {
            **alone.cost.methods["retrain"],
            "wall_seconds": shared.cost.methods["retrain"]["wall_seconds"],
        }


def test_same_seed_gives_the_same_metrics_twice(tmp_path: Path) -> None:
    from fedunlearn.apps.simulation import simulate

    config = small_config(tmp_path, 'unlearning.methods=["federaser", "fedrecovery"]')
    a = simulate(config.with_overrides([f"output.run_dir={tmp_path / 'a'}"]), show_progress=False)
    b = simulate(config.with_overrides([f"output.run_dir={tmp_path / 'b'}"]), show_progress=False)
    assert a.metrics.models == b.metrics.models


def test_report_writes_tables_and_figures(tmp_path: Path) -> None:
    sweep = Sweep.from_toml(write_sweep(tmp_path))
    run_sweep(sweep)
    report = write_report(tmp_path / "out")
    text = report.read_text()
    assert "| unlearning.federaser.r | method | runs |" in text
    assert "| 0.25 | federaser | 2 |" in text and "±" in text
    assert (tmp_path / "out" / "report_clean_accuracy.png").is_file()
    assert "report_clean_accuracy.png" in text


def fake_complete(runs) -> None:
    """Mark planned runs complete as a finished sweep would, without simulating."""
    for run in runs:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "params.json").write_text(json.dumps(run.describe()))
        (run.run_dir / "metrics.json").write_text(json.dumps({"status": "complete"}))


def test_resume_redoes_runs_whose_base_config_changed(tmp_path: Path) -> None:
    old = Sweep.from_toml(write_sweep(tmp_path)).plan()
    fake_complete(old)
    assert all(r.is_complete() for r in old)
    # Where results go is not part of a run: still complete.
    moved = Sweep.from_toml(write_sweep(tmp_path), [f"output.dir={tmp_path / 'elsewhere'}"])
    assert all(r.is_complete() for r in moved.plan())
    # The base experiment edited: same run ids (same grid values), none complete.
    edited = Sweep.from_toml(write_sweep(tmp_path, SWEEP.replace("rounds = 3", "rounds = 4")))
    new = edited.plan()
    assert [r.run_id for r in new] == [r.run_id for r in old]
    assert not any(r.is_complete() for r in new)


def test_run_folders_without_a_config_hash_are_judged_by_their_stored_config(
    tmp_path: Path,
) -> None:
    runs = Sweep.from_toml(write_sweep(tmp_path)).plan()
    fake_complete(runs)
    legacy = {"run_id": runs[0].run_id, "seed": runs[0].seed, "params": runs[0].params}
    (runs[0].run_dir / "params.json").write_text(json.dumps(legacy))
    # No config.toml to vouch for it: redone.
    assert not runs[0].is_complete()
    assert all(r.is_complete() for r in runs[1:])
    # The config it ran with, stored beside it: complete when it is the same config.
    (runs[0].run_dir / "config.toml").write_text(runs[0].config.to_toml())
    assert runs[0].is_complete()
    other = runs[0].config.with_overrides(["training.rounds=7"])
    (runs[0].run_dir / "config.toml").write_text(other.to_toml())
    assert not runs[0].is_complete()


def test_run_sweep_clears_and_reruns_stale_runs(tmp_path: Path, monkeypatch) -> None:
    import fedunlearn.studies.sweep as sweep_module

    fake_complete(Sweep.from_toml(write_sweep(tmp_path)).plan())
    seen: list[tuple[str, bool]] = []

    def fake_simulations(simulations, parallel, show_progress, console):
        runs = [r for s in simulations for g in s for r in g]
        seen.extend((r.run_id, (r.run_dir / "metrics.json").exists()) for r in runs)
        return {r.run_id: "" for r in runs}

    monkeypatch.setattr(sweep_module, "_run_simulations", fake_simulations)
    edited = Sweep.from_toml(write_sweep(tmp_path, SWEEP.replace("rounds = 3", "rounds = 4")))
    result = run_sweep(edited)
    assert len(result.ran) == 4 and not result.skipped
    assert len(seen) == 4 and not any(stale for _, stale in seen)  # old metrics moved out
    # ... set aside, never deleted
    stale = list((edited.out / "runs" / ".stale").iterdir())
    assert len(stale) == 4 and all((d / "metrics.json").is_file() for d in stale)


def test_report_draws_roc_curves_per_parameter_combination(tmp_path: Path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    out = tmp_path / "out"
    tenths = [i / 10 for i in range(11)]
    diagonal = {"fpr": tenths, "tpr": tenths}
    perfect = {"fpr": [0.0, 0.0, 0.1, 1.0], "tpr": [0.0, 1.0, 1.0, 1.0]}
    rows = []
    for mode, curve in (("full", perfect), ("label", diagonal)):
        for seed in (0, 1):
            run_id = f"seed{seed}-{mode}"
            (out / "runs" / run_id).mkdir(parents=True)
            roc = {"gap": {"federaser": curve}, "mia": {"federaser": curve}}
            (out / "runs" / run_id / "attacks.json").write_text(json.dumps({"roc": roc}))
            rows.append(
                {
                    "run_id": run_id,
                    "release.mode": mode,
                    "seed": seed,
                    "method": "federaser",
                    "clean_accuracy": 0.9,
                }
            )
    # A folder of another sweep, not in results.csv: not drawn.
    (out / "runs" / "stray").mkdir()
    (out / "runs" / "stray" / "attacks.json").write_text(json.dumps({"roc": {"gap": {}}}))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.json").write_text(json.dumps({"grid": {"release.mode": ["full", "label"]}}))
    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), close(fig)))

    text = write_report(out).read_text()

    assert (out / "report_roc_1.png").is_file() and (out / "report_roc_2.png").is_file()
    assert not (out / "report_roc.png").exists()
    assert "ROC curves, release.mode = full:" in text and "report_roc_1.png" in text
    assert "ROC curves, release.mode = label:" in text and "report_roc_2.png" in text
    rocs = {f._suptitle.get_text(): f for f in figures if f._suptitle is not None}
    assert set(rocs) == {"ROC: release.mode = full", "ROC: release.mode = label"}
    for title, expected in (("full", lambda x: np.ones_like(x)), ("label", lambda x: x)):
        axes = rocs[f"ROC: release.mode = {title}"].axes
        assert [ax.get_title() for ax in axes] == ["gap", "mia"]
        for ax in axes:
            line = ax.get_lines()[0]
            assert line.get_label() == "federaser (2 seeds)"
            # Seeds averaged within the combination; the other mode's curves not mixed in.
            # No FPR-resolution figure in these files: the curves' lowest non-zero FPR.
            assert line.get_xdata().min() == pytest.approx(0.1)
            np.testing.assert_allclose(line.get_ydata(), expected(line.get_xdata()))


def test_report_pairs_each_attack_with_its_honest_control(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    key = "roles.malicious-unlearner.control"
    rows = [
        {
            "run_id": f"s{seed}-{control}",
            key: control,
            "seed": seed,
            "method": "retrain",
            "clean_accuracy": 0.9,
            "original_clean_accuracy": 0.95,
            "client_epochs": 30.0 if control else 90.0,
        }
        for seed in (0, 1)
        for control in (False, True)
    ]
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.json").write_text(json.dumps({"grid": {key: [False, True]}}))
    text = write_report(out).read_text()
    assert "## Malicious unlearning against an honest control" in text
    # Flooding made every unlearning cost 3x its control, on both seeds.
    assert "| retrain | 2 |" in text and "| 3.000 ± 0.000 |" in text
