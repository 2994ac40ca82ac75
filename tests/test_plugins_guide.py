"""docs/plugins.md, tried as a newcomer would: its modules are written to a folder of
their own and run for real, and every config, command and message it quotes is real."""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.cli import main
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.data.world import federated_data
from fedunlearn.federation.recording import RecordingMixin
from fedunlearn.learning.metrics import parameter_distance
from fedunlearn.plugins import GROUPS, load_object
from fedunlearn.roles.role import ClientRole, load_role
from fedunlearn.run.components import resolve_components
from fedunlearn.run.experiment import ExperimentResult
from fedunlearn.unlearning.method import UnlearningMethod
from tests.conftest import small_config

GUIDE = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
MODULE = re.compile(r"# (my_lab/\w+\.py)\n")
METHOD = "my_lab.methods:RollbackAndTune"
ROLE = "my_lab.roles:ForgetFirstRecords"


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(GUIDE) if lang == language]


def modules() -> dict[str, str]:
    """The guide's Python blocks that are modules, by path (their first line)."""
    found = {}
    for body in blocks("python"):
        match = MODULE.match(body)
        if match:
            found[match.group(1)] = body
    return found


def snippets() -> list[str]:
    """The guide's other Python blocks."""
    return [b for b in blocks("python") if not MODULE.match(b)]


def configs() -> list[dict[str, Any]]:
    """The guide's experiment configs (every TOML block but the pyproject one)."""
    return [tomllib.loads(b) for b in blocks("toml") if not b.startswith("# pyproject.toml")]


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` deep-merged into ``base``; lists are joined (method lists add up)."""
    for key, value in update.items():
        if isinstance(value, Mapping):
            merge(base.setdefault(key, {}), value)
        elif isinstance(value, list) and isinstance(base.get(key), list):
            base[key] = list(dict.fromkeys([*base[key], *value]))
        else:
            base[key] = value
    return base


def write_my_lab(root: Path) -> None:
    package = root / "my_lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for path, body in modules().items():
        (root / path).write_text(body)


def forget_my_lab() -> None:
    for name in [n for n in sys.modules if n == "my_lab" or n.startswith("my_lab.")]:
        del sys.modules[name]
    load_role.cache_clear()


@pytest.fixture(scope="module")
def my_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The guide's modules as the package ``my_lab``, importable."""
    root = tmp_path_factory.mktemp("lab")
    write_my_lab(root)
    forget_my_lab()  # another test's my_lab may be imported already
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(root))
        yield root
    forget_my_lab()


def guide_config(
    tmp_path: Path, *overrides: str, methods: tuple[str, ...] = ()
) -> ExperimentConfig:
    """The small test experiment, trained long enough that no method's model is near
    chance, with every config of the guide on top, then ``overrides``; ``methods`` run
    too."""
    learns = ("training.local_epochs=2", "training.learning_rate=0.1")
    raw = small_config(tmp_path, "history.delta_t=1", *learns).to_dict()
    raw["unlearning"]["methods"] = list(methods)
    for table in configs():
        merge(raw, table)
    return ExperimentConfig.from_dict(raw).with_overrides(list(overrides))


@pytest.fixture(scope="module")
def run(my_lab: Path, tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    # fedaccum forgets whole clients only: the role's record request must skip it.
    config = guide_config(tmp_path_factory.mktemp("run"), methods=("fedaccum",))
    return simulate(config, show_progress=False)


def test_the_guide_has_its_modules_and_every_snippet_runs(my_lab: Path) -> None:
    assert set(modules()) == {
        "my_lab/methods.py",
        "my_lab/damped.py",
        "my_lab/roles.py",
        "my_lab/strategies.py",
    }
    for snippet in snippets():
        exec(compile(snippet, "docs/plugins.md", "exec"), {})


def test_the_method_runs_through_the_federation_as_the_guide_says(run: ExperimentResult) -> None:
    metrics = run.metrics
    label = "rollback-and-tune"
    rounds = next(c for c in configs() if METHOD in c.get("unlearning", {}))["unlearning"][METHOD][
        "rounds"
    ]
    assert metrics.status == "complete"
    assert set(metrics.errors) == {"fedaccum"}
    assert "whole clients only" in metrics.errors["fedaccum"]
    assert {label, "damped-tune", "retrain"} <= set(metrics.models)
    assert metrics.cost.methods[label]["rounds"] == rounds == 3
    assert metrics.cost.methods[label]["client_epochs"] > 0
    assert metrics.cost.methods["damped-tune"]["rounds"] == 2
    assert metrics.details[label] == [{"restart_round": 1}]
    assert metrics.method_options[label] == {"rounds": rounds}
    assert metrics.method_options["damped-tune"] == {"rounds": 2, "server_lr": 0.5}
    assert metrics.history is not None and run.history is not None
    assert metrics.history.bytes_needed[label] == run.history.bytes_of(updates=False)
    assert metrics.history.bytes_needed["damped-tune"] == 0
    for name in (label, "damped-tune"):
        assert parameter_distance(run.models[name], run.models["original"]) > 1e-3, name
    logged = [r for r in run.rounds if r["phase"] == f"unlearning ({label})" and r["round"] > 0]
    assert [r["round"] for r in logged] == list(range(1, rounds + 1))
    assert all(r["clients"] == 3 for r in logged)  # client 0 was forgotten


def test_the_role_is_served_and_the_strategy_trained(run: ExperimentResult) -> None:
    first = federated_data(run.config).client(3).ids[:10]
    assert run.metrics.forgotten == {
        "clients": [0],
        "records": {"3": sorted(int(i) for i in first)},
    }
    assert run.history is not None
    assert run.history.meta["strategy"] == "my_lab.strategies:MyFedProx"
    assert run.history.aggregation == "weighted-mean"


def test_model_after_rebuilds_the_next_kept_global_model(run: ExperimentResult) -> None:
    namespace: dict[str, Any] = {}
    (snippet,) = [s for s in snippets() if "def model_after" in s]
    exec(compile(snippet, "docs/plugins.md", "exec"), namespace)
    history = run.history
    assert history is not None and history.rounds == [1, 2, 3, 4]
    for t, expected in ((1, history[2].global_model), (4, history.final_model)):
        rebuilt = namespace["model_after"](history, t)
        for key, value in expected.items():
            np.testing.assert_allclose(rebuilt[key], value, atol=1e-5)
    assert history[1].global_model.keys() == history.initial_model.keys()


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (
            f'unlearning."{METHOD}".rounds=0',
            f'[unlearning."{METHOD}"]: rounds must be an integer >= 1, got 0',
        ),
        (
            f'unlearning."{METHOD}".round=2',
            f"[unlearning.\"{METHOD}\"] has unknown option(s) ['round']",
        ),
        (f'roles."{ROLE}".records=0', f'roles."{ROLE}".records must be >= 1, got 0'),
    ],
)
def test_bad_options_are_refused_with_the_guides_message(
    my_lab: Path, tmp_path: Path, override: str, problem: str
) -> None:
    config = guide_config(tmp_path, override)
    with pytest.raises(ConfigError) as err:
        simulate(config, show_progress=False)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
    assert problem in " ".join(GUIDE.split())


def test_every_toml_block_is_a_valid_config_whose_plugins_load(my_lab: Path) -> None:
    assert len(configs()) == 4
    for table in configs():
        resolve_components(ExperimentConfig.from_dict(table))


def test_the_commands_of_the_guide_work(my_lab: Path, tmp_path: Path) -> None:
    bash = "\n".join(blocks("bash"))
    assert "fedunlearn check my.toml" in bash
    path = tmp_path / "my.toml"
    path.write_text(blocks("toml")[0])
    assert main(["check", str(path)]) == 0
    (override,) = re.findall(r"--set '([^']+)'", bash)
    assert main(["check", str(path), "--set", override]) == 0
    config = ExperimentConfig.from_toml(path).with_overrides([override])
    method = resolve_components(config).methods["rollback-and-tune"]
    assert method.options() == {"rounds": 5}


def test_the_aliases_name_the_guides_classes(my_lab: Path) -> None:
    (block,) = [b for b in blocks("toml") if b.startswith("# pyproject.toml")]
    groups = tomllib.loads(block)["project"]["entry-points"]
    bases = {"method": UnlearningMethod, "role": ClientRole, "trainer": RecordingMixin}
    kinds = {group: kind for kind, group in GROUPS.items()}
    assert set(groups) == set(kinds)
    for group, aliases in groups.items():
        for target in aliases.values():
            assert issubclass(load_object(target), bases[kinds[group]]), target
    # Not installed, the alias is unknown, and the error says to reinstall.
    with pytest.raises(ConfigError, match="reinstall"):
        resolve_components(
            ExperimentConfig().with_overrides(['unlearning.methods=["rollback-and-tune"]'])
        )


def test_a_strategy_without_the_mixin_is_refused_as_the_guide_says(
    my_lab: Path, tmp_path: Path
) -> None:
    (quoted,) = blocks("text")
    config = small_config(tmp_path, 'training.strategy="flwr.serverapp.strategy:FedProx"')
    with pytest.raises(ConfigError) as err:
        resolve_components(config)
    assert quoted.strip() in err.value.problems
