"""Defences: record commitments, rate limits, impact monitoring, release modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import RecordDict

from fedunlearn.apps.simulation import simulate
from fedunlearn.attacks.access import AccessDeniedError, FullAccess, ReleasedAccess
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.defenses.checks import checks_for, verify_requests
from fedunlearn.defenses.commitment import (
    commit,
    commitment_problem,
    content_hashes,
    prove,
    uncommitted,
)
from fedunlearn.defenses.monitor import ImpactMonitor
from fedunlearn.federation.registry import ClientInfo, ClientRegistry
from fedunlearn.learning.arrays import model_to_arrays
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import train_locally
from fedunlearn.roles.role import ClientRole
from fedunlearn.roles.setup import ClientSetup
from fedunlearn.unlearning.requests import ReceivedRequest, UnlearningRequest
from tests.conftest import small_config

INFO = DatasetInfo("toy", (1, 6, 6), 3)


def toy(n: int = 90, seed: int = 0, first_id: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int64)
    x = rng.normal(0, 0.3, (n, 1, 6, 6)).astype(np.float32)
    x[np.arange(n), 0, 2 * y, 2] += 2.0
    return ArrayDataset(x, y, np.arange(first_id, first_id + n))


def test_commitments_open_only_for_committed_records_and_their_content() -> None:
    secret = b"s" * 32
    data = toy(4)
    contents = content_hashes(data.x, data.y)
    commitment = dict(zip([1, 2, 3], commit(secret, [1, 2, 3], contents[:3]), strict=True))
    assert uncommitted(commitment, [2, 3], prove(secret, [2, 3], contents[1:3])) == []
    assert uncommitted(commitment, [2, 9], prove(secret, [2, 9], contents[1:3])) == [9]
    assert uncommitted(commitment, [2], [b"x" * 64]) == [2]  # a made-up proof
    assert uncommitted(commitment, [2, 3], prove(secret, [2], contents[1:2])) == [2, 3]
    # The right nonce with another record's content does not open it: ids alone do not.
    assert uncommitted(commitment, [2], prove(secret, [2], contents[3:4])) == [2]
    # A different record gives a different hash.
    assert len(set(contents)) == 4


def test_a_commitment_binds_only_as_many_records_as_the_client_trains_on() -> None:
    assert commitment_problem([1, 2], [b"a", b"b"], 2) == ""
    assert "committed to 3 records but trains on 2" in commitment_problem(
        [1, 2, 3], [b"a", b"b", b"c"], 2
    )
    assert "twice" in commitment_problem([1, 1], [b"a", b"b"], 2)
    assert "2 record ids but 1 digests" in commitment_problem([1, 2], [b"a"], 2)


def info_for(role: ClientRole, node: int = 99, extra_ids: tuple[int, ...] = ()) -> ClientInfo:
    ids, digests = role.commitment()
    padded = tuple(ids) + extra_ids
    return ClientInfo(
        role.client_id,
        node,
        len(role.setup.data),
        padded,
        tuple(digests) + (b"x" * 32,) * len(extra_ids),
    )


def registry_for(role: ClientRole) -> ClientRegistry:
    return ClientRegistry([info_for(role)])


def test_a_request_naming_records_outside_the_commitment_is_refused() -> None:
    config = ExperimentConfig()
    role = ClientRole(ClientSetup(4, toy(), INFO, config, RecordDict()))
    registry = registry_for(role)
    honest = role.request_records([3, 5, 8])
    outsider = role.request_records([3, 500])  # record 500 is not the client's
    forged = UnlearningRequest(4, (3, 5), (b"a" * 64, b"b" * 64))
    decisions = verify_requests(
        [ReceivedRequest(4, honest), ReceivedRequest(4, outsider), ReceivedRequest(4, forged)],
        registry,
    ).decisions
    assert decisions[0].accepted
    assert not decisions[1].accepted and decisions[1].check == "committed_records"
    assert "1 records it did not commit to" in decisions[1].reason
    assert not decisions[2].accepted and "2 records" in decisions[2].reason
    # Without the defence the same requests go through.
    relaxed = verify_requests(
        [ReceivedRequest(4, outsider)], registry, checks_for(verify_commitment=False)
    ).decisions
    assert relaxed[0].accepted


def test_without_the_owner_check_records_are_checked_against_the_owners_commitment() -> None:
    config = ExperimentConfig()
    owner = ClientRole(ClientSetup(4, toy(), INFO, config, RecordDict()))
    other = ClientRole(ClientSetup(5, toy(first_id=1000), INFO, config, RecordDict()))
    registry = ClientRegistry([info_for(r, 90 + r.client_id) for r in (owner, other)])
    checks = checks_for(verify_owner=False)
    # Client 5 names client 4's records with its own (valid for itself) proofs: refused,
    # since they do not open client 4's commitment.
    own_proofs = other.request_records([1000, 1001])
    forged = UnlearningRequest(4, (3, 5), own_proofs.proofs)
    (decision,) = verify_requests([ReceivedRequest(5, forged)], registry, checks).decisions
    assert not decision.accepted and decision.check == "committed_records"
    assert "client 4 did not commit to" in decision.reason
    # Client 4's own proofs open client 4's commitment, whoever forwards them.
    genuine = owner.request_records([3, 5])
    (decision,) = verify_requests([ReceivedRequest(5, genuine)], registry, checks).decisions
    assert decision.accepted


def test_a_padded_or_contested_commitment_cannot_remove_another_clients_records() -> None:
    config = ExperimentConfig()
    victim = ClientRole(ClientSetup(4, toy(), INFO, config, RecordDict()))
    padder = ClientRole(ClientSetup(5, toy(first_id=1000), INFO, config, RecordDict()))
    stolen = (3, 5, 8)
    # Padding: its commitment names its own records and three of client 4's.
    registry = ClientRegistry([info_for(victim, 90), info_for(padder, 91, stolen)])
    claim = UnlearningRequest(5, stolen, tuple(b"p" * 64 for _ in stolen))
    (decision,) = verify_requests([ReceivedRequest(5, claim)], registry).decisions
    assert not decision.accepted
    assert "committed to 93 records but trains on 90" in decision.reason
    # Swapping: as many records as it trains on, three of them client 4's: contested.
    ids, digests = padder.commitment()
    swapped = ClientInfo(
        5, 91, 90, tuple(ids[:-3]) + stolen, tuple(digests[:-3]) + (b"y" * 32,) * 3
    )
    registry = ClientRegistry([info_for(victim, 90), swapped])
    (decision,) = verify_requests([ReceivedRequest(5, claim)], registry).decisions
    assert not decision.accepted and "contested: 3 (4 and 5)" in decision.reason
    # The victim itself may not have them removed either, while they are contested.
    genuine = victim.request_records(stolen)
    (decision,) = verify_requests([ReceivedRequest(4, genuine)], registry).decisions
    assert not decision.accepted and "contested" in decision.reason


def test_the_rate_limit_refuses_requests_beyond_the_limit() -> None:
    config = ExperimentConfig()
    role = ClientRole(ClientSetup(4, toy(), INFO, config, RecordDict()))
    requests = [ReceivedRequest(4, role.request_records([i])) for i in range(5)]
    decisions = verify_requests(requests, registry_for(role), checks_for(max_requests=2)).decisions
    assert [d.accepted for d in decisions] == [True, True, False, False, False]
    assert decisions[2].check == "rate_limit"


def test_forged_records_are_refused_in_a_run_and_accepted_without_the_check(tmp_path: Path) -> None:
    common = (
        'roles.2="malicious-unlearner"',
        "unlearning.requesters=[]",
        "roles.malicious-unlearner.behaviour=forge_records",
        "roles.malicious-unlearner.records=5",
        'unlearning.methods=["federaser"]',
    )
    guarded = simulate(small_config(tmp_path / "g", *common), show_progress=False).metrics
    (decision,) = guarded.requests
    assert not decision["accepted"] and decision["check"] == "committed_records"
    open_door = simulate(
        small_config(tmp_path / "o", *common, "defense.verify_commitment=false"),
        show_progress=False,
    ).metrics
    assert open_door.requests[0]["accepted"]
    assert open_door.cost.methods["retrain"]["client_epochs"] > 0  # an unlearning spent for nothing


def trained(data: ArrayDataset, epochs: float = 8) -> dict:
    model = build_model("mlp", INFO.input_shape, 3, 16, seed=0)
    train_locally(model, data, epochs=epochs, batch_size=16, learning_rate=0.2, seed=1)
    return model_to_arrays(model)


def new_model():
    return build_model("mlp", INFO.input_shape, 3, 16, seed=0)


def test_the_monitor_rejects_a_planted_harmful_unlearning() -> None:
    from fedunlearn.data.canary import apply_trigger

    data = toy(300)
    validation = toy(120, seed=5, first_id=1000)
    monitor = ImpactMonitor(new_model, validation, max_accuracy_drop=0.05, max_trigger_rise=0.2)
    before = trained(data)
    assert monitor.check(before, before).accepted
    # Harm 1: the "unlearned" model is damaged.
    damaged = {
        k: v + np.random.default_rng(0).normal(0, 1.0, v.shape).astype(v.dtype)
        for k, v in before.items()
    }
    decision = monitor.check(before, damaged)
    assert not decision.accepted and "validation accuracy fell" in decision.reason
    # Harm 2: it carries a backdoor, a square sending everything to class 2, of a size
    # the scan does not use (3) and in a corner no canary uses: the server finds it
    # without knowing it.
    poisoned = data.subset(np.arange(100))
    backdoored = ArrayDataset(
        np.concatenate([data.x, apply_trigger(poisoned.x, 3, corner="top-right")]),
        np.concatenate([data.y, np.full(100, 2)]),
        np.arange(400),
    )
    decision = monitor.check(before, trained(backdoored))
    assert not decision.accepted and "top-right" in decision.reason


def test_the_monitor_keeps_the_previous_model_when_it_rejects(tmp_path: Path) -> None:
    metrics = simulate(
        small_config(
            tmp_path,
            'roles.2="malicious-unlearner"',
            "unlearning.requesters=[]",
            "roles.malicious-unlearner.behaviour=camouflage",
            'unlearning.methods=["rollback"]',
            "training.rounds=6",
            "defense.monitor=true",
        ),
        show_progress=False,
    ).metrics
    (check,) = metrics.monitor["rollback"]
    assert not check["accepted"]
    models = metrics.models
    # Rejected: rollback's released model is still the original; the reference is kept.
    assert models["rollback"]["poison_success_rate"] == models["original"]["poison_success_rate"]
    assert models["retrain"]["poison_success_rate"] > models["rollback"]["poison_success_rate"]


def test_release_modes_transform_outputs() -> None:
    access = FullAccess(new_model, trained(toy()))
    x = toy(10, seed=3).x
    full = access.predict_proba(x)
    top1 = ReleasedAccess(access, "top_k", k=1).predict_proba(x)
    assert ((top1 > 0).sum(axis=1) == 1).all()
    np.testing.assert_allclose(top1.max(axis=1), full.max(axis=1))
    rounded = ReleasedAccess(access, "rounded", decimals=1).predict_proba(x)
    np.testing.assert_allclose(rounded, np.round(full, 1))
    hot = ReleasedAccess(access, "temperature", temperature=10.0).predict_proba(x)
    assert (hot.max(axis=1) <= full.max(axis=1) + 1e-9).all()
    label = ReleasedAccess(access, "label")
    np.testing.assert_array_equal(label.predict_label(x), full.argmax(axis=1))
    with pytest.raises(AccessDeniedError):
        label.predict_proba(x)


def test_a_rejected_stage_is_not_served_by_a_later_stage(tmp_path: Path) -> None:
    # Two sequential requests; the monitor rejects the method's first stage, so its
    # second stage must forget the second request only, not the running total.
    result = simulate(
        small_config(
            tmp_path,
            'roles.2="malicious-unlearner"',
            "unlearning.requesters=[]",
            "roles.malicious-unlearner.behaviour=flood",
            "roles.malicious-unlearner.records=4",
            "roles.malicious-unlearner.requests=2",
            "unlearning.sequential=true",
            'unlearning.methods=["tests.methods:WreckFirst"]',
            "defense.monitor=true",
        ),
        show_progress=False,
    )
    metrics = result.metrics
    label = "wreck-first"
    first, second = metrics.monitor[label]
    assert not first["accepted"] and second["accepted"]
    stages = metrics.details[label]
    requested = [s["forget"]["records"]["2"] for s in stages]
    assert len(requested[0]) == 2
    assert requested[1] != requested[0] and len(requested[1]) == 2
