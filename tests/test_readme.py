"""The README's examples are true: its config is a valid experiment, its commands exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from fedunlearn.cli import _parser
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.run.components import resolve_components

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_readme_config_is_a_valid_experiment() -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    config = ExperimentConfig.from_dict(tomllib.loads(block.group(1)))
    components = resolve_components(config)
    assert set(components.methods) == {"federaser", "rollback"}
    assert components.roles["malicious-unlearner"][1].behaviour == "camouflage"


def test_every_fedunlearn_command_in_the_readme_exists() -> None:
    commands = set(re.findall(r"^fedunlearn (\w+)", README, re.M))
    assert commands, "the README shows no command"
    known = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands <= known, commands - known
