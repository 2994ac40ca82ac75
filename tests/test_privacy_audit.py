"""A local-DP run lands on its target epsilon and can be re-checked by a third party.

Clients plan their noise at the sample rate Opacus really uses (1 / ceil(n / B), not
B / n) and the steps they really take, once per client and phase; every epsilon a run
reports is recomputed here from its results folder alone with Opacus's RDPAccountant
(the recipe of docs/defenses.md).
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path

import pytest
import torch
from flwr.app import RecordDict
from opacus.accountants import RDPAccountant
from opacus.data_loader import DPDataLoader
from torch.utils.data import DataLoader, TensorDataset

import fedunlearn.roles.role as role_module
from fedunlearn.defenses.privacy import (
    DPTraining,
    opacus_batches,
    opacus_sample_rate,
    steps_per_round,
    train_privately,
)
from fedunlearn.federation.protocol import TrainInstruction
from fedunlearn.learning.arrays import model_to_arrays
from fedunlearn.learning.models import build_model
from fedunlearn.roles.role import ClientRole
from fedunlearn.roles.setup import ClientSetup
from tests.test_privacy import INFO, local_dp_config, toy


def test_opacus_samples_at_one_over_the_number_of_batches() -> None:
    # 400 records in batches of 32 make 13 batches (the last of 16): Opacus samples at
    # 1/13 = 0.0769, not 32/400 = 0.08.
    assert opacus_sample_rate(400, 32) == 1 / 13
    assert opacus_sample_rate(80, 16) == 0.2
    assert opacus_sample_rate(10, 32) == 1.0
    loader = DataLoader(TensorDataset(torch.zeros(400, 1)), batch_size=32)
    assert DPDataLoader.from_data_loader(loader).sample_rate == opacus_sample_rate(400, 32)
    assert steps_per_round(400, 32, 1.0) == 13
    assert steps_per_round(400, 32, 0.5) == 7
    assert steps_per_round(400, 32, 2.0) == 26


def test_a_round_takes_the_planned_steps_at_the_planned_rate() -> None:
    # 1,488 records in batches of 16 make 93 batches; Opacus samples at 1/93, but its
    # sampler draws int(1 / (1/93)) = 92 batches a pass (floating point), and its
    # accountant records the rate one over that: 1/92.
    assert opacus_batches(1488, 16) == 92
    model = build_model("mlp", INFO.input_shape, 3, 8, seed=0)
    result, history = train_privately(
        model,
        toy(1488),
        epochs=1.0,
        batch_size=16,
        learning_rate=0.1,
        momentum=0.0,
        seed=0,
        dp=DPTraining(noise_multiplier=1.0, max_grad_norm=1.0),
        history=[],
    )
    assert history == [(1.0, 1 / 92, 92)]
    assert opacus_sample_rate(1488, 16) == 1 / 92
    assert result.steps == steps_per_round(1488, 16, 1.0) == 92


def spend_target(setup: ClientSetup, rounds: int, batch_size: int) -> float:
    start = model_to_arrays(build_model("mlp", INFO.input_shape, 3, 8, seed=0))
    for server_round in range(1, rounds + 1):
        ClientRole(setup).fit(start, TrainInstruction(server_round, 1.0, batch_size, 0.1))
    return ClientRole(setup).privacy_spent()["train"]


def test_target_epsilon_is_spent_within_one_percent_under() -> None:
    # 400 records in batches of 32, 4 rounds of one epoch: 4 x 13 = 52 steps at 1/13.
    # Planned at 32/400 (and 4 x 13 steps), training spent about 6% less than asked.
    config = local_dp_config(
        [
            "privacy.target_epsilon=4.0",
            "training.rounds=4",
            "training.local_epochs=1",
            "training.batch_size=32",
        ]
    )
    setup = ClientSetup(0, toy(400), INFO, config, RecordDict())
    spent = spend_target(setup, 4, 32)
    assert 0.99 * 4.0 <= spent <= 4.0
    noise = ClientRole(setup).privacy_histories()["train"][0][0]
    assert ClientRole(setup).privacy_histories() == {"train": [(noise, 1 / 13, 52)]}


def test_the_noise_is_chosen_once_per_client_and_phase(monkeypatch) -> None:
    calls = []
    plan = role_module.noise_for_target

    def counted(*args: float) -> float:
        calls.append(args)
        return plan(*args)

    monkeypatch.setattr(role_module, "noise_for_target", counted)
    config = local_dp_config(
        [
            "privacy.target_epsilon=3.0",
            "training.rounds=3",
            "training.local_epochs=1",
            "training.batch_size=16",
        ]
    )
    setup = ClientSetup(1, toy(80), INFO, config, RecordDict())  # a role per message
    spend_target(setup, 3, 16)
    start = model_to_arrays(build_model("mlp", INFO.input_shape, 3, 8, seed=0))
    for server_round in (1, 2):
        instruction = TrainInstruction(server_round, 0.5, 16, 0.1, phase="calibrate")
        ClientRole(setup).fit(start, instruction)
    assert len(calls) == 1  # five rounds in two phases, one search
    # planned at rate 16/80 = 1/5 for 3 rounds of one epoch, 5 steps each
    assert calls[0][2:] == (0.2, 15)
    histories = ClientRole(setup).privacy_histories()
    noise = histories["train"][0][0]
    assert histories == {"train": [(noise, 0.2, 15)], "calibrate": [(noise, 0.2, 6)]}


def recompute(accounts: dict, client: str, phase: str) -> float:
    """The recipe of docs/defenses.md: Opacus's RDPAccountant fed a saved account."""
    account = accounts[client][phase]
    accountant = RDPAccountant()
    for part in [*account["composed_with"], phase]:
        accountant.history += [
            (h["noise_multiplier"], h["sample_rate"], h["steps"])
            for h in accounts[client][part]["history"]
        ]
    return accountant.get_epsilon(delta=account["delta"])


def test_a_dp_runs_folder_reproduces_every_epsilon_with_opacus(tmp_path: Path) -> None:
    from fedunlearn.apps.simulation import simulate
    from tests.conftest import small_config

    config = small_config(
        tmp_path,
        "privacy.mode=local",
        "privacy.target_epsilon=4.0",
        "canary.memorization=0",
        "output.figures=false",
    )
    run_dir = simulate(config, show_progress=False).run_dir
    # From here on, only the files of the results folder.
    privacy = json.loads((run_dir / "metrics.json").read_text())["privacy"]
    accounts = privacy["accounts"]
    assert set(accounts) == {"0", "1", "2", "3"}
    for client, phases in accounts.items():
        for phase, account in phases.items():
            assert account["accountant"] == "rdp"
            assert recompute(accounts, client, phase) == account["epsilon"]
    # The recipe of docs/defenses.md, as written, agrees.
    docs = (Path(__file__).resolve().parents[1] / "docs" / "defenses.md").read_text()
    recipe = re.search(r"#### Re-checking.*?```python\n(.*?)```", docs, re.S)
    assert recipe is not None
    exec(recipe.group(1).replace("results/<run>", str(run_dir)), {})
    # The run's figures are the largest over clients; training's is on target.
    train = [phases["train"]["epsilon"] for phases in accounts.values()]
    assert privacy["training_epsilon"] == max(train)
    assert 0.99 * 4.0 <= privacy["training_epsilon"] <= 4.0
    assert privacy["target_epsilon"] == 4.0
    for method, phase in privacy["method_phases"].items():
        spent = [p.get(phase, p["train"])["epsilon"] for p in accounts.values()]
        assert privacy["epsilon"][method] == max(spent)
    assert privacy["epsilon"]["retrain"] > privacy["training_epsilon"]
    # Every client trained in every round at one noise, planned at the rate Opacus uses.
    noises = {
        h["noise_multiplier"] for p in accounts.values() for a in p.values() for h in a["history"]
    }
    assert len(noises) == 1
    # The comparison table shows the accounted epsilon of every model.
    with open(run_dir / "comparison.csv") as handle:
        rows = {r["model"]: float(r["epsilon"]) for r in csv.DictReader(handle)}
    assert rows == {"original": privacy["training_epsilon"], **privacy["epsilon"]}
    assert "| epsilon |" in (run_dir / "comparison.md").read_text()
    # config.toml does not pass off the default noise_multiplier as the one used.
    text = (run_dir / "config.toml").read_text()
    line = next(x for x in text.splitlines() if x.startswith("noise_multiplier"))
    assert "# unused" in line
    assert tomllib.loads(text)["privacy"]["target_epsilon"] == 4.0


@pytest.mark.parametrize("mode", ["none", "central"])
def test_the_comparison_table_shows_epsilon_only_under_dp(mode: str) -> None:
    from fedunlearn.reporting.schema import PrivacySpent, RunMetrics
    from fedunlearn.reporting.tables import comparison_rows, markdown_table

    metrics = RunMetrics(name="x", seed=0, methods=["m"], reference="retrain")
    metrics.models = {"original": {}, "m": {}, "retrain": {}}
    if mode == "central":
        metrics.privacy = PrivacySpent("central", 1e-5, 2.0, {"m": float("inf"), "retrain": 3.0})
    rows = comparison_rows(metrics)
    table = markdown_table(rows)
    if mode == "none":
        assert "epsilon" not in rows[0] and "epsilon" not in table
    else:
        assert [r["epsilon"] for r in rows] == [2.0, float("inf"), 3.0]
        assert "| inf |" in table and "| 3.00 |" in table


def test_the_summary_over_seeds_shows_epsilon_under_dp() -> None:
    from fedunlearn.studies.summary import summarise, summary_markdown

    rows = [{"model": "retrain", "seed": s, "epsilon": e} for s, e in ((0, 3.0), (1, 5.0))]
    table = summary_markdown(summarise(rows))
    assert "| epsilon |" in table and "| 4.00 ± 1.00 |" in table
    assert "epsilon" not in summary_markdown(summarise([{"model": "retrain", "seed": 0}]))
