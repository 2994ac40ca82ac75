"""Every scenario file in experiments/ is a valid experiment and a valid sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.studies.plan import Sweep

FILES = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


def test_every_scenario_is_described_in_the_studies_guide() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "studies.md").read_text()
    assert FILES
    for path in FILES:
        # malicious_*.toml share a row: "`malicious_forge.toml`, `_over_unlearning`, ..."
        short = path.stem.removeprefix("malicious")
        assert f"`{path.name}`" in guide or f"`{short}`" in guide, path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_plans_cleanly_and_explains_itself(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#") and "Question:" in text and "Expected shape:" in text
    sweep = Sweep.from_toml(path, [f"output.dir={tmp_path}"])
    assert sweep.plan()
    base = dict(__import__("tomllib").loads(text))
    base.pop("sweep", None)
    ExperimentConfig.from_dict(base)
