"""Shared fixtures: small, fast experiment configs and Flower's task identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.supercore.task_identity import TaskIdentity

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.presets import SMALL_DIGITS
from fedunlearn.run.experiment import ExperimentResult


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    """Flower needs a task identity to build messages outside a running app."""
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = 1
    TaskIdentity.node_id = 1


def small_config(tmp_path: Path, *overrides: str) -> ExperimentConfig:
    """A tiny experiment on scikit-learn's digits: 4 clients, 4 rounds, an MLP."""
    base = [
        "name=small",
        *SMALL_DIGITS,
        "simulation.backend=inline",
        f"output.dir={tmp_path / 'results'}",
    ]
    return ExperimentConfig().with_overrides([*base, *overrides])


@pytest.fixture
def small(tmp_path: Path) -> ExperimentConfig:
    return small_config(tmp_path)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    """One run of the small experiment (FedEraser and retraining, history every other
    round), shared by the tests that only read its results."""
    from fedunlearn.apps.simulation import simulate

    tmp = tmp_path_factory.mktemp("small-run")
    return simulate(small_config(tmp, "history.delta_t=2"), show_progress=False)
