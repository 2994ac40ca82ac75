"""The default experiment meets its targets (slow: a full Ray run, about 80 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig


@pytest.mark.slow
@pytest.mark.simulation
def test_default_experiment_learns_the_canary_and_federaser_forgets_it(tmp_path: Path) -> None:
    config = ExperimentConfig().with_overrides([f"output.dir={tmp_path}"])
    metrics = simulate(config, show_progress=False).metrics
    models, cost = metrics.models, metrics.cost
    original, federaser, retrain = models["original"], models["federaser"], models["retrain"]
    assert original["attack_success_rate"] >= 0.80
    assert abs(federaser["attack_success_rate"] - retrain["attack_success_rate"]) <= 0.10
    assert abs(federaser["clean_accuracy"] - retrain["clean_accuracy"]) <= 0.03
    assert (
        cost.methods["retrain"]["client_epochs"] >= 2 * cost.methods["federaser"]["client_epochs"]
    )
    assert metrics.history.kept_rounds == list(range(1, 21, 2))
