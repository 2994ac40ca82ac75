"""``models.npz`` and ``fedunlearn audit RUN_DIR``: a finished run's leakage audit redone
from its folder alone, the same figures with the same config, other figures with an
override, and the run's results kept whole when the re-audit cannot run or fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import fedunlearn.run.reaudit as reaudit_module
from fedunlearn.cli import main
from fedunlearn.evaluation.archive import read_attack_scores
from fedunlearn.reporting.models import ModelsFileError, read_models, write_models
from fedunlearn.run.experiment import ExperimentResult
from fedunlearn.run.reaudit import audit_overrides, reaudit
from tests.conftest import small_config

ATTACK = (
    "attack.enabled=true",
    "attack.shadow_models=1",
    "attack.shadow_epochs=2",
    "attack.bootstrap=100",
    "attack.candidates=20",
)
AUDIT_FILES = ("attacks.json", "attacks.md", "attack_scores.npz", "metrics.json")


@pytest.fixture(scope="module")
def attacked_run(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    """A small run with the observer's leakage audit (about 5 s)."""
    from fedunlearn.apps.simulation import simulate

    tmp = tmp_path_factory.mktemp("attacked-run")
    return simulate(small_config(tmp, *ATTACK), show_progress=False)


@pytest.fixture
def run_dir(attacked_run: ExperimentResult, tmp_path: Path) -> Path:
    """A copy of the attacked run's folder, for a test to change."""
    return Path(shutil.copytree(attacked_run.run_dir, tmp_path / "run"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in AUDIT_FILES}


# ------------------------------------------------------------------- models.npz


def test_models_npz_round_trips_names_order_and_dtypes(tmp_path: Path) -> None:
    models = {
        "original": {"b.weight": np.arange(3, dtype=np.float32), "a.bias": np.ones(2)},
        "fed/eraser": {"b.weight": np.zeros(3, dtype=np.float16), "a.bias": np.zeros(2)},
    }
    write_models(models, tmp_path)
    back = read_models(tmp_path)
    assert list(back) == ["original", "fed/eraser"]  # a label may hold '/': split at the last
    for label, weights in models.items():
        assert list(back[label]) == list(weights)
        for name, value in weights.items():
            assert back[label][name].dtype == value.dtype
            np.testing.assert_array_equal(back[label][name], value)


def test_a_finished_run_keeps_every_model_it_audited(attacked_run: ExperimentResult) -> None:
    saved = read_models(attacked_run.run_dir)
    assert set(saved) == {"original", "federaser", "retrain"} == set(attacked_run.models)
    for label, weights in attacked_run.models.items():
        assert list(saved[label]) == list(weights)
        for name, value in weights.items():
            np.testing.assert_array_equal(saved[label][name], value)


def test_missing_or_corrupt_models_npz_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="models.npz does not exist"):
        read_models(tmp_path)
    (tmp_path / "models.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelsFileError, match="models.npz is not a readable"):
        read_models(tmp_path)
    np.savez(tmp_path / "models.npz", flat=np.zeros(2))
    with pytest.raises(ModelsFileError, match="'flat' is not '<label>/<param>'"):
        read_models(tmp_path)


# ------------------------------------------------------------------- re-audit


def test_reaudit_with_the_run_config_reproduces_its_figures_exactly(
    attacked_run: ExperimentResult, run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    before = json.loads((run_dir / "attacks.json").read_text())
    metrics_before = json.loads((run_dir / "metrics.json").read_text())
    scores_before = read_attack_scores(run_dir / "attack_scores.npz")
    assert main(["audit", str(run_dir)]) == 0
    assert "re-audited" in capsys.readouterr().out
    after = json.loads((run_dir / "attacks.json").read_text())
    assert after["metrics"] == before["metrics"]
    assert after["roc"] == before["roc"]
    scores_after = read_attack_scores(run_dir / "attack_scores.npz")
    assert list(scores_after) == list(scores_before)
    for key, value in scores_before.items():
        np.testing.assert_array_equal(scores_after[key], value)
    metrics_after = json.loads((run_dir / "metrics.json").read_text())
    assert metrics_after["attack_setup"].pop("reaudit")["overrides"] == []
    assert metrics_after == metrics_before  # everything else as the run left it
    assert not list(run_dir.glob(".reaudit-*"))  # no scratch folder left


def test_an_override_changes_the_figures_and_is_recorded(run_dir: Path) -> None:
    config_before = (run_dir / "config.toml").read_bytes()
    before = json.loads((run_dir / "attacks.json").read_text())
    assert before["metrics"]["mia_baseline"]["original"]["negatives"] == 20
    done = reaudit(run_dir, ["attack.negatives=30"])
    after = json.loads((run_dir / "attacks.json").read_text())
    figures = after["metrics"]["mia_baseline"]["original"]
    assert figures["negatives"] == 30
    assert figures["lowest_fpr"] == pytest.approx(1 / 30)
    assert after["setup"]["non_members"] == 30
    assert done.config.attack.negatives == 30
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["attack_setup"]["reaudit"]["overrides"] == ["attack.negatives=30"]
    assert metrics["attacks"]["mia_baseline"]["original"]["negatives"] == 30
    # The method's table columns follow the new audit.
    column = metrics["table_columns"]["federaser"]["mia_auc"]
    assert column == after["metrics"]["mia_baseline"]["federaser"]["auc"]
    assert (run_dir / "config.toml").read_bytes() == config_before


@pytest.mark.parametrize(
    "key", ["training.rounds=2", "seed=3", "privacy.audit_canaries=10", "output.figures=false"]
)
def test_a_key_outside_the_audit_sections_is_exit_2_naming_it(
    run_dir: Path, key: str, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(run_dir)
    assert main(["audit", str(run_dir), "--set", key]) == 2
    err = capsys.readouterr().err
    assert key.split("=")[0] in err and "[attack]" in err
    assert snapshot(run_dir) == before


def test_audit_overrides_allows_attack_and_release_keys() -> None:
    keys = ["attack.negatives=30", "release.mode=label"]
    assert audit_overrides(keys) == keys


def test_not_a_run_folder_is_exit_2_naming_it(tmp_path: Path, capsys) -> None:
    assert main(["audit", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a run folder" in capsys.readouterr().err
    (tmp_path / "config.toml").write_text('name = "x"\n')
    assert main(["audit", str(tmp_path)]) == 2
    assert "metrics.json does not exist" in capsys.readouterr().err


def test_missing_models_npz_is_exit_2_naming_it(run_dir: Path, capsys) -> None:
    (run_dir / "models.npz").unlink()
    before = snapshot(run_dir)
    assert main(["audit", str(run_dir)]) == 2
    assert "models.npz does not exist" in capsys.readouterr().err
    assert snapshot(run_dir) == before


def test_a_client_attacker_is_refused(run_dir: Path, capsys) -> None:
    client = ["--set", "attack.attacker=client", "--set", "attack.client=3"]
    assert main(["audit", str(run_dir), *client]) == 2
    assert "client attacker" in capsys.readouterr().err


def test_a_run_with_reference_federations_is_refused_and_kept(run_dir: Path, capsys) -> None:
    before = snapshot(run_dir)
    audited = ["--set", "audit.references=2"]
    assert main(["audit", str(run_dir), *audited]) == 2
    assert "reference federations" in capsys.readouterr().err
    assert snapshot(run_dir) == before


def test_a_failing_audit_leaves_the_results_as_they_were(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(run_dir)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("figure broke")

    # Fails after every new file but the figure is written to the scratch folder.
    monkeypatch.setattr(reaudit_module, "plot_attack_roc", broken)
    with pytest.raises(RuntimeError, match="figure broke"):
        reaudit(run_dir, ["attack.negatives=30"])
    assert snapshot(run_dir) == before
    assert not list(run_dir.glob(".reaudit-*"))
