"""The malicious unlearner, each abuse against its honest control."""

from __future__ import annotations

from pathlib import Path

from fedunlearn.clients.malicious_unlearner import CRAFTED_ID_BASE

from fedunlearn.apps.simulation import simulate
from tests.conftest import small_config


def run(tmp_path: Path, *overrides: str):
    config = small_config(
        tmp_path,
        'roles.2="malicious-unlearner"',
        "unlearning.requesters=[]",
        "training.rounds=6",
        "output.figures=false",
        *overrides,
    )
    return simulate(config, show_progress=False).metrics


def test_a_forged_request_is_refused_by_the_owner_check(tmp_path: Path) -> None:
    metrics = run(
        tmp_path, "roles.malicious-unlearner.behaviour=forge", "roles.malicious-unlearner.victim=1"
    )
    (decision,) = metrics.requests
    assert decision["requester"] == 2 and decision["target_client"] == 1
    assert not decision["accepted"] and decision["check"] == "owner_only"
    assert metrics.forgotten_clients == []


def test_without_the_defence_a_forged_request_erases_the_victim(tmp_path: Path) -> None:
    attack = run(
        tmp_path / "a",
        "roles.malicious-unlearner.behaviour=forge",
        "roles.malicious-unlearner.victim=0",
        "defense.verify_owner=false",
    )
    control = run(
        tmp_path / "c",
        "roles.malicious-unlearner.behaviour=forge",
        "roles.malicious-unlearner.victim=0",
        "defense.verify_owner=false",
        "roles.malicious-unlearner.control=true",
    )
    assert attack.forgotten_clients == [0]  # client 0 never asked
    assert control.forgotten_clients == [2]
    # Client 0 holds the canary: the forged request removed it.
    assert (
        attack.models["retrain"]["attack_success_rate"]
        < control.models["retrain"]["attack_success_rate"] - 0.2
    )


def test_over_unlearning_asks_to_remove_its_crafted_boundary_records(tmp_path: Path) -> None:
    attack = run(
        tmp_path / "a",
        "roles.malicious-unlearner.behaviour=over_unlearn",
        "roles.malicious-unlearner.records=12",
        'unlearning.methods=["federaser"]',
    )
    control = run(
        tmp_path / "c",
        "roles.malicious-unlearner.behaviour=over_unlearn",
        "roles.malicious-unlearner.records=12",
        'unlearning.methods=["federaser"]',
        "roles.malicious-unlearner.control=true",
    )
    crafted = [int(i) for i in attack.forgotten["records"]["2"]]
    genuine = [int(i) for i in control.forgotten["records"]["2"]]
    assert len(crafted) == len(genuine) == 12
    assert all(i >= CRAFTED_ID_BASE for i in crafted) and all(i < CRAFTED_ID_BASE for i in genuine)


def test_removing_the_camouflage_wakes_the_poison_up(tmp_path: Path) -> None:
    common = (
        "roles.malicious-unlearner.behaviour=camouflage",
        "roles.malicious-unlearner.poison=40",
        "roles.malicious-unlearner.camouflage=80",
        'unlearning.methods=["rollback"]',
    )
    attack = run(tmp_path / "a", *common)
    control = run(tmp_path / "c", *common, "roles.malicious-unlearner.control=true")
    dormant = attack.models["original"]["poison_success_rate"]
    woken = attack.models["retrain"]["poison_success_rate"]
    assert woken > dormant + 0.3
    assert woken > control.models["retrain"]["poison_success_rate"] + 0.15


def test_flooding_multiplies_the_cost_of_unlearning(tmp_path: Path) -> None:
    common = (
        "roles.malicious-unlearner.behaviour=flood",
        "roles.malicious-unlearner.records=6",
        "roles.malicious-unlearner.requests=3",
        "unlearning.sequential=true",
        'unlearning.methods=["federaser"]',
    )
    attack = run(tmp_path / "a", *common)
    control = run(tmp_path / "c", *common, "roles.malicious-unlearner.control=true")
    assert len(attack.stages) == 3 and len(control.stages) == 1
    ratio = (
        attack.cost.methods["retrain"]["client_epochs"]
        / control.cost.methods["retrain"]["client_epochs"]
    )
    assert 2.5 < ratio < 3.5
