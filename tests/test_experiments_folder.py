"""Every scenario file in experiments/ is a valid experiment and a valid sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.studies.plan import Sweep

FILES = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


def test_there_are_scenarios() -> None:
    names = {f.stem for f in FILES}
    assert {"federaser_vs_retrain", "compare_methods", "leakage", "tradeoff", "defenses"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_plans_cleanly_and_explains_itself(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#") and "Question:" in text and "Expected shape:" in text
    sweep = Sweep.from_toml(path, [f"output.dir={tmp_path}"])
    assert sweep.plan()
    base = dict(__import__("tomllib").loads(text))
    base.pop("sweep", None)
    ExperimentConfig.from_dict(base)
