"""``fedunlearn app``: an experiment as a Flower app folder whose run config is the
whole experiment (roles and their options included)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from fedunlearn.apps.flower_app import write_flower_app
from fedunlearn.cli import main
from fedunlearn.config.experiment import ExperimentConfig


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flower's reading of ``[tool.flwr.app.config]``: nested tables as dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        flat.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return flat


def test_the_app_config_gives_back_the_experiment_with_its_roles_and_options(
    tmp_path: Path,
) -> None:
    config = ExperimentConfig().with_overrides(
        [
            "name=deployed",
            "federation.num_clients=3",
            "unlearning.methods=['federaser', 'retrain']",
            "roles.2='malicious-unlearner'",
            "roles.malicious-unlearner.victim=1",
        ]
    )
    path = write_flower_app(config, tmp_path / "app")
    project = tomllib.loads(path.read_text())
    app = project["tool"]["flwr"]["app"]
    assert app["components"] == {
        "serverapp": "fedunlearn.apps.server_app:app",
        "clientapp": "fedunlearn.apps.client_app:app",
    }
    assert project["project"]["name"] == "fedunlearn-deployed"
    back = ExperimentConfig.from_run_config(_flatten(app["config"]))
    assert back == config
    assert back.roles.role_of(2) == "malicious-unlearner"
    assert back.roles.options_for("malicious-unlearner") == {"victim": 1}


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("x = 1\n")
    with pytest.raises(FileExistsError, match="new or empty folder"):
        write_flower_app(ExperimentConfig(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.py"]


def test_the_command_writes_the_app_and_names_a_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["app", "--set", "training.rounds=3", "--out", str(tmp_path / "a")]) == 0
    assert "flwr run" in capsys.readouterr().out
    config = tomllib.loads((tmp_path / "a" / "pyproject.toml").read_text())
    assert config["tool"]["flwr"]["app"]["config"]["training"]["rounds"] == 3
    assert main(["app", "--set", "training.roundz=3", "--out", str(tmp_path / "b")]) == 2
    assert "training.roundz" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
