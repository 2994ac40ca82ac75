"""The whole pipeline on an in-process federation (fast): every phase, every output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.federation.registry import FederationError
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.run.experiment import ExperimentResult
from tests.conftest import small_config


def test_pipeline_unlearns_the_requester_and_writes_every_output(
    small_run: ExperimentResult,
) -> None:
    result = small_run
    run = result.run_dir
    for name in ("config.toml", "metrics.json", "rounds.csv", "rounds.png", "comparison.png"):
        assert (run / name).is_file(), name
    metrics = RunMetrics.load(run)
    assert metrics.status == "complete"
    assert metrics.forgotten_clients == [0]
    assert set(metrics.models) == {"original", "federaser", "retrain"}
    for audit in metrics.models.values():
        for key in ("clean_accuracy", "forget_accuracy", "attack_success_rate"):
            assert 0.0 <= audit[key] <= 1.0
    assert metrics.models["retrain"]["l2_to_reference"] == 0.0
    assert metrics.models["federaser"]["l2_to_reference"] > 0.0
    assert metrics.history.kept_rounds == [1, 3]
    assert metrics.history.bytes == result.history.nbytes > 0
    cost = metrics.cost
    # Training: 4 clients x 4 rounds x 1 epoch. Retraining: 3 clients x 4 rounds.
    assert cost.training["client_epochs"] == pytest.approx(16, rel=0.1)
    assert cost.methods["retrain"]["client_epochs"] == pytest.approx(12, rel=0.1)
    assert cost.methods["federaser"]["client_epochs"] < cost.methods["retrain"]["client_epochs"] / 2
    assert metrics.environment["versions"]["flwr"].startswith("1.")
    with open(run / "rounds.csv") as handle:
        rows = list(csv.DictReader(handle))
    phases = {r["phase"] for r in rows}
    assert phases == {"training", "unlearning (federaser)", "retraining"}
    assert sum(r["phase"] == "training" for r in rows) == 5  # rounds 0..4


def test_history_holds_exactly_the_expected_rounds_and_clients(tmp_path: Path) -> None:
    result = simulate(
        small_config(tmp_path, "history.delta_t=1", "history.storage=disk"), show_progress=False
    )
    history = result.history
    assert history.rounds == [1, 2, 3, 4]
    assert all(history[t].clients == (0, 1, 2, 3) for t in history.rounds)
    assert (result.run_dir / "history" / "index.json").is_file()


def test_a_forged_request_is_refused_and_the_honest_one_served(tmp_path: Path) -> None:
    config = small_config(tmp_path, 'roles.2="tests.roles:Forger"')
    metrics = simulate(config, show_progress=False).metrics
    decisions = {d["requester"]: d for d in metrics.requests}
    assert decisions[0]["accepted"]
    assert not decisions[2]["accepted"]
    assert "only the owner may ask" in decisions[2]["reason"]
    assert metrics.forgotten_clients == [0]


def test_without_requests_nothing_is_unlearned(tmp_path: Path) -> None:
    metrics = simulate(
        small_config(tmp_path, "unlearning.requesters=[]"), show_progress=False
    ).metrics
    assert metrics.forgotten_clients == [] and metrics.models == {}


def test_same_seed_gives_the_same_metrics(small_run: ExperimentResult, tmp_path: Path) -> None:
    config = small_run.config.with_overrides([f"output.run_dir={tmp_path}"])
    again = simulate(config, show_progress=False)
    assert again.metrics.models == small_run.metrics.models

    def untimed(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert untimed(again.rounds) == untimed(small_run.rounds)


def test_a_failing_client_stops_the_run_and_keeps_what_was_done(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        'roles.3="tests.roles:CrashesInRoundThree"',
        "output.run_dir=" + str(tmp_path / "run"),
    )
    with pytest.raises(FederationError, match="crashed on purpose"):
        simulate(config, show_progress=False)
    run = tmp_path / "run"
    assert "crashed on purpose" in (run / "error.txt").read_text()
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"
    with open(run / "rounds.csv") as handle:
        assert [r["round"] for r in csv.DictReader(handle)] == ["0", "1", "2"]


def test_client_side_evaluation_and_training_loss_reach_the_round_log(tmp_path: Path) -> None:
    config = small_config(tmp_path, "federation.fraction_evaluate=0.5")
    rows = simulate(config, show_progress=False).rounds
    trained = [r for r in rows if r["phase"] == "training" and r["round"] > 0]
    assert all(0.0 <= r["client_accuracy"] <= 1.0 for r in trained)
    assert all(r["train_loss"] > 0 and r["clients"] == 4 for r in trained)
    retrained = [r for r in rows if r["phase"] == "retraining" and r["round"] > 0]
    assert all(r["clients"] == 3 for r in retrained)
