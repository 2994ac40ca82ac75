"""Experiment config: defaults, errors that name the key, Flower run-config round trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from fedunlearn.strategies.federaser import FedEraser
from flwr.common.config import flatten_dict

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.run.components import resolve_components

ROOT = Path(__file__).resolve().parents[1]


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(raw)
    return str(err.value)


def test_defaults_are_valid_and_resolve_to_real_plugins() -> None:
    config = ExperimentConfig()
    components = resolve_components(config)
    assert isinstance(components.methods["federaser"], FedEraser)
    assert components.reference.exact


def test_unknown_keys_are_named_with_a_suggestion_and_the_allowed_keys() -> None:
    text = problems_of({"training": {"roundz": 3}})
    assert "unknown key 'training.roundz'" in text
    assert "Did you mean 'rounds'?" in text
    assert "local_epochs" in text
    assert "unknown key 'trainin'" in problems_of({"trainin": {}})


def test_wrong_types_and_impossible_values_name_the_key_and_what_is_allowed() -> None:
    text = problems_of(
        {
            "training": {"rounds": "ten", "learning_rate": -1},
            "data": {"partition": "dirichlett"},
            "federation": {"num_clients": 1},
        }
    )
    assert "training.rounds must be an integer, got 'ten'" in text
    assert "training.learning_rate must be > 0, got -1" in text
    assert "data.partition must be one of 'iid', 'dirichlet', 'pathological'" in text
    assert "did you mean 'dirichlet'" in text
    assert "federation.num_clients must be >= 2, got 1" in text


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict({"seed": "x", "model": {"hidden": 0}, "canary": {"nope": 1}})
    assert len(err.value.problems) == 3


def test_cross_key_checks() -> None:
    text = problems_of(
        {
            "federation": {"num_clients": 3},
            "canary": {"client": 5},
            "unlearning": {"requesters": [0, 7]},
            "history": {"delta_t": 30},
        }
    )
    assert "canary.client must be a client id in 0..2, got 5" in text
    assert "unlearning.requesters [7] are not client ids" in text
    assert "history.delta_t (30) exceeds training.rounds (20)" in text


def test_unknown_methods_and_method_options_are_refused_before_anything_runs() -> None:
    config = ExperimentConfig.from_dict({"unlearning": {"methods": ["federeaser"]}})
    with pytest.raises(ConfigError, match="unknown method 'federeaser'.*Did you mean 'federaser'"):
        resolve_components(config)
    config = ExperimentConfig.from_dict({"unlearning": {"federaser": {"ratio": 0.5}}})
    with pytest.raises(ConfigError, match=r"\[unlearning.federaser\] has unknown option"):
        resolve_components(config)
    config = ExperimentConfig.from_dict({"roles": {"default": "spy"}})
    with pytest.raises(ConfigError, match="unknown role 'spy'"):
        resolve_components(config)


def test_toml_files_load_and_syntax_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "x.toml"
    good.write_text('name = "x"\n[training]\nrounds = 3\n[unlearning.federaser]\nr = 0.25\n')
    config = ExperimentConfig.from_toml(good)
    assert config.training.rounds == 3
    assert config.unlearning.options_for("federaser") == {"r": 0.25}
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\nrounds = 3")
    with pytest.raises(ConfigError, match="bad.toml"):
        ExperimentConfig.from_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        ExperimentConfig.from_toml(tmp_path / "missing.toml")


def test_flat_run_config_round_trips_including_lists_and_roles() -> None:
    config = ExperimentConfig.from_dict(
        {
            "unlearning": {"requesters": [0, 3], "federaser": {"r": 0.25}},
            "roles": {"default": "honest", "3": "honest"},
        }
    )
    flat = config.to_run_config()
    assert flat["unlearning.requesters"] == "0,3"
    assert ExperimentConfig.from_run_config(flat) == config


def test_pyproject_flower_app_config_is_the_default_experiment() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    flat = flatten_dict(pyproject["tool"]["flwr"]["app"]["config"])
    from_flower = ExperimentConfig.from_run_config(flat)
    default = ExperimentConfig()
    without_options = from_flower.to_dict()
    without_options["unlearning"].pop("federaser")
    assert without_options == default.to_dict()
    assert from_flower.unlearning.options_for("federaser") == FedEraser().options()


def test_overrides_apply_toml_values_and_are_validated() -> None:
    config = ExperimentConfig().with_overrides(["training.rounds=3", "model.name=mlp"])
    assert config.training.rounds == 3 and config.model.name == "mlp"
    with pytest.raises(ConfigError, match="training.rounds must be >= 1"):
        ExperimentConfig().with_overrides(["training.rounds=0"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        ExperimentConfig().with_overrides(["training.rounds"])


def test_resolved_config_toml_reloads_to_the_same_config(tmp_path: Path) -> None:
    config = ExperimentConfig().with_overrides(["unlearning.requesters=[1, 2]", "seed=4"])
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert ExperimentConfig.from_toml(path) == config


def test_history_storage_options_are_checked_together() -> None:
    config = ExperimentConfig().with_overrides(["history.precision=float16"])
    assert config.history.precision == "float16"
    with pytest.raises(ConfigError, match="history.precision must be one of"):
        ExperimentConfig().with_overrides(["history.precision=float8"])
    with pytest.raises(ConfigError, match="history.compress = true needs history.storage"):
        ExperimentConfig().with_overrides(["history.compress=true"])
