"""Reference federations kept for reuse (fedunlearn/run/reference_store.py): which runs
share them, the file's round trip and its failures, and that a run that loads them
computes exactly what it computes when it trains them itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.config.identity import config_hash
from fedunlearn.evaluation.calibrated import read_references
from fedunlearn.federation.references import reference_config
from fedunlearn.run.experiment import ExperimentResult
from fedunlearn.run.reference_store import FOLDER, ReferenceStore, TrainedReference
from tests.conftest import small_config

AUDITED = ("attack.enabled=true", "audit.references=2")


def test_runs_of_one_world_differing_in_seed_have_the_same_references(tmp_path: Path) -> None:
    a = small_config(tmp_path, *AUDITED, "seed=0", "data.seed=7")
    b = small_config(tmp_path, *AUDITED, "seed=1", "data.seed=7")
    assert [config_hash(reference_config(a, k)) for k in range(2)] == [
        config_hash(reference_config(b, k)) for k in range(2)
    ]
    # Options only the audit reads do not change them either.
    d = small_config(tmp_path, *AUDITED, "seed=2", "data.seed=7", "attack.negatives=300")
    d = d.with_overrides(["attack.bootstrap=0", "audit.coverage=0.9", "release.k=2"])
    assert config_hash(reference_config(d, 1)) == config_hash(reference_config(a, 1))
    # Another world (the seed is the world seed when data.seed is unset): others.
    c = small_config(tmp_path, *AUDITED, "seed=1")
    assert config_hash(reference_config(c, 0)) != config_hash(reference_config(a, 0))
    # Reference 0 and 1 of one run are different federations.
    assert config_hash(reference_config(a, 0)) != config_hash(reference_config(a, 1))


def _trained() -> TrainedReference:
    models = {
        "original": {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1.0, -1.0])},
        "retrain": {"w": np.ones((2, 3)), "b": np.zeros(2)},
    }
    return TrainedReference(models, np.array([3, 5, 8, 9]), np.array([5, 9]))


def test_trained_on_tells_original_retrained_and_forgotten_by_record_id() -> None:
    held, retrain, forgotten = _trained().trained_on(np.array([1, 3, 5, 9, 10]))
    assert held.tolist() == [False, True, True, True, False]
    assert retrain.tolist() == [False, True, False, False, False]
    assert forgotten.tolist() == [False, False, True, True, False]


def test_a_kept_reference_reads_back_as_it_was_saved(tmp_path: Path) -> None:
    config = reference_config(small_config(tmp_path, *AUDITED), 0)
    store = ReferenceStore(tmp_path / FOLDER)
    assert store.load(config) is None
    path = store.save(config, _trained())
    assert path.name == f"{config_hash(config)}.npz"
    loaded = store.load(config)
    assert loaded is not None
    assert list(loaded.models) == ["original", "retrain"]
    for label, weights in _trained().models.items():
        assert list(loaded.models[label]) == list(weights)  # state_dict order kept
        for name, value in weights.items():
            assert np.array_equal(loaded.models[label][name], value)
    assert loaded.held.tolist() == [3, 5, 8, 9] and loaded.forgotten.tolist() == [5, 9]


def test_an_unreadable_or_foreign_file_is_trained_again_with_a_warning(tmp_path: Path) -> None:
    run = small_config(tmp_path, *AUDITED)
    config, other = reference_config(run, 0), reference_config(run, 1)
    store = ReferenceStore(tmp_path / FOLDER)
    store.path(config).parent.mkdir()
    store.path(config).write_bytes(b"not an archive")
    with pytest.warns(UserWarning, match="cannot be used.*training it again"):
        assert store.load(config) is None
    # Reference 1's file under reference 0's name.
    store.save(other, _trained()).rename(store.path(config))
    with pytest.warns(UserWarning, match="another config's reference"):
        assert store.load(config) is None


def _audited_run(parent: Path, seed: int) -> ExperimentResult:
    from fedunlearn.apps.simulation import simulate

    config = small_config(
        parent,
        *AUDITED,
        f"seed={seed}",
        "data.seed=0",
        "attack.shadow_models=1",
        "attack.shadow_epochs=1",
        "attack.bootstrap=100",
        "unlearning.methods=['federaser']",
    )
    return simulate(config, show_progress=False)


def _setup(run: ExperimentResult) -> dict:
    return json.loads((run.run_dir / "attacks.json").read_text())["setup"]


def test_a_run_that_loads_kept_references_computes_what_training_them_gives(
    tmp_path: Path,
) -> None:
    first = _audited_run(tmp_path / "shared", seed=0)
    assert _setup(first)["references_reused"] == 0
    assert len(list((tmp_path / "shared" / "results" / FOLDER).glob("*.npz"))) == 2
    reusing = _audited_run(tmp_path / "shared", seed=1)
    assert _setup(reusing)["references_reused"] == 2
    alone = _audited_run(tmp_path / "alone", seed=1)
    assert _setup(alone)["references_reused"] == 0
    kept, trained = read_references(reusing.run_dir), read_references(alone.run_dir)
    assert sorted(kept) == sorted(trained)
    for key in trained:
        assert np.array_equal(kept[key], trained[key], equal_nan=kept[key].dtype.kind == "f"), key
    figures = [json.loads((r.run_dir / "attacks.json").read_text()) for r in (reusing, alone)]
    assert figures[0]["metrics"] == figures[1]["metrics"]
    # The seed-1 run's references are not its own training: its target differs.
    assert not np.array_equal(
        read_references(first.run_dir)["target/original/membership_phi"],
        kept["target/original/membership_phi"],
    )
