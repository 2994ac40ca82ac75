"""Every method in real (in-process) federated runs: all at once, record-level
requests, several clients, requests one after another, and a method from outside."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.options import ConfigError
from fedunlearn.data.world import federated_data
from fedunlearn.learning.arrays import load_arrays
from fedunlearn.learning.metrics import accuracy, parameter_distance
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import predict_logits
from fedunlearn.plugins import available
from fedunlearn.run.components import resolve_components
from tests.conftest import small_config


@pytest.fixture(scope="module")
def all_methods(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("all")
    config = small_config(
        tmp,
        'unlearning.methods=["all"]',
        "history.delta_t=1",
        "data.server_fraction=0.1",
        "unlearning.subtract.distill_epochs=2",
        "unlearning.finetune.rounds=2",
        "unlearning.fedrecovery.noise_std=0.0",
    )
    return simulate(config, show_progress=False)


def test_every_registered_method_runs_and_is_audited(all_methods) -> None:
    metrics = all_methods.metrics
    expected = set(available("method"))
    assert expected >= {
        "retrain",
        "rollback",
        "federaser",
        "fedaccum",
        "finetune",
        "subtract",
        "pga",
        "fedrecover",
        "fedrecovery",
    }
    assert set(metrics.models) == expected | {"original"}
    assert metrics.errors == {}
    # Each audit is of the model the method returned: recomputed from its weights.
    world = federated_data(all_methods.config)
    for label, arrays in all_methods.models.items():
        model = build_model("mlp", world.info.input_shape, world.info.num_classes, 32, 0)
        load_arrays(model, arrays)
        measured = accuracy(predict_logits(model, world.test.x), world.test.y)
        assert metrics.models[label]["clean_accuracy"] == measured, label


def test_no_method_silently_returns_the_trained_model(all_methods) -> None:
    original = all_methods.models["original"]
    for label, arrays in all_methods.models.items():
        if label != "original":
            assert parameter_distance(arrays, original) > 1e-3, label


def test_rollback_reproduces_retraining_bit_for_bit(all_methods) -> None:
    models = all_methods.models
    assert parameter_distance(models["rollback"], models["retrain"]) == 0.0


def test_comparison_table_and_figure_are_written(all_methods) -> None:
    run = all_methods.run_dir
    table = (run / "comparison.md").read_text()
    for label in all_methods.metrics.models:
        assert f"| {label} |" in table
    assert (run / "comparison.csv").is_file() and (run / "comparison.png").is_file()
    needed = all_methods.metrics.history.bytes_needed
    assert needed["finetune"] == 0 and needed["fedrecover"] == all_methods.history.nbytes
    assert 0 < needed["retrain"] < needed["federaser"]


def test_record_level_requests_are_served_by_methods_that_can(tmp_path: Path) -> None:
    config = small_config(
        tmp_path, 'unlearning.methods=["all"]', "unlearning.scope=canary", "history.delta_t=1"
    )
    result = simulate(config, show_progress=False)
    metrics = result.metrics
    canary = metrics.forgotten["records"]["0"]
    assert metrics.forgotten["clients"] == [] and len(canary) > 0
    assert set(metrics.models) == {
        "original",
        "retrain",
        "rollback",
        "federaser",
        "finetune",
        "pga",
    }
    for skipped in ("fedaccum", "subtract", "fedrecover", "fedrecovery"):
        assert "whole clients only" in metrics.errors[skipped]
    models = metrics.models
    assert models["retrain"]["attack_success_rate"] < models["original"]["attack_success_rate"]
    assert parameter_distance(result.models["rollback"], result.models["retrain"]) == 0.0


def test_a_method_without_record_support_is_refused_up_front_for_record_requests(tmp_path) -> None:
    config = small_config(tmp_path, 'unlearning.methods=["fedaccum"]', "unlearning.scope=random")
    with pytest.raises(ConfigError, match="fedaccum forgets whole clients only"):
        resolve_components(config)


def test_several_clients_forgotten_at_once(tmp_path: Path) -> None:
    config = small_config(
        tmp_path, "unlearning.requesters=[0, 2]", 'unlearning.methods=["federaser", "rollback"]'
    )
    result = simulate(config, show_progress=False)
    assert result.metrics.forgotten_clients == [0, 2]
    assert len(result.metrics.stages) == 1
    assert parameter_distance(result.models["rollback"], result.models["retrain"]) == 0.0


def test_requests_served_one_after_another_from_the_unlearned_model(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        "unlearning.requesters=[0, 2]",
        "unlearning.sequential=true",
        'unlearning.methods=["federaser", "finetune"]',
    )
    result = simulate(config, show_progress=False)
    stages = result.metrics.stages
    assert [s.forget["clients"] for s in stages] == [[0], [2]]
    assert [s.forgotten_so_far["clients"] for s in stages] == [[0], [0, 2]]
    assert all(set(s.models) == {"original", "federaser", "finetune", "retrain"} for s in stages)
    # Stage-2 audits differ from stage 1's: another reference, another forgotten set.
    assert stages[0].models["finetune"] != stages[1].models["finetune"]
    assert result.metrics.cost.methods["retrain"]["rounds"] == 2 * 4
    phases = {r["phase"] for r in result.rounds}
    assert {"retraining [stage 1]", "retraining [stage 2]"} <= phases


def test_a_method_defined_outside_the_package_runs_by_dotted_path(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        'unlearning.methods=["tests.methods:HalfwayBack"]',
        'unlearning."tests.methods:HalfwayBack".fraction=0.25',
    )
    result = simulate(config, show_progress=False)
    assert "halfway-back" in result.metrics.models
    original, initial = result.models["original"], result.history.initial_model
    moved = result.models["halfway-back"]
    for k in original:
        np.testing.assert_allclose(
            moved[k], original[k] + 0.25 * (initial[k] - original[k]), rtol=1e-5, atol=1e-6
        )
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["method_options"]["halfway-back"] == {"fraction": 0.25}


def test_a_failing_method_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    config = small_config(tmp_path, 'unlearning.methods=["tests.methods:Broken", "federaser"]')
    result = simulate(config, show_progress=False)
    assert "broken on purpose" in result.metrics.errors["broken"]
    assert set(result.metrics.models) == {"original", "federaser", "retrain"}
    assert "RuntimeError" in (result.run_dir / "errors" / "broken.txt").read_text()
