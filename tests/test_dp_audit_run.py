"""The one-run DP audit on real runs (``privacy.audit_canaries``): where the canaries go,
that every bound a run reports is recomputed from its files (scores re-derived from
``models.npz`` with PyTorch and SciPy), that it never exceeds the accounted epsilon on
a private run and is clearly positive on a barely private one, and that a run without
it is unchanged."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fedunlearn.strategies.fedrecovery import FedRecovery
from scipy.special import logsumexp

from fedunlearn.attacks.dp_audit import one_run_audit
from fedunlearn.config.options import ConfigError
from fedunlearn.data.world import federated_data, with_audit_canaries
from fedunlearn.evaluation.privacy_audit import read_dp_audit, run_dp_audit
from fedunlearn.learning.models import build_model
from fedunlearn.reporting.models import read_models
from fedunlearn.run.check import check_experiment
from fedunlearn.run.experiment import ExperimentResult
from fedunlearn.seeding import derive_seed
from tests.conftest import small_config

LOCAL = ("privacy.mode=local", "privacy.noise_multiplier=1.0", "privacy.audit_canaries=100")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    """A small local-DP run (noise multiplier 1) with 100 audit canaries (about 5 s)."""
    from fedunlearn.apps.simulation import simulate

    tmp = tmp_path_factory.mktemp("dp-audit-run")
    return simulate(small_config(tmp, *LOCAL), show_progress=False)


def hand_phi(run_dir: Path, config, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Each saved model's log(p_y / (1 - p_y)) on the canaries, from ``models.npz``."""
    info = federated_data(config).info
    out = {}
    for label, weights in read_models(run_dir).items():
        model = build_model(config.model.name, info.input_shape, info.num_classes, 32, 0)
        model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
        model.eval()
        with torch.no_grad():
            z = model(torch.as_tensor(x)).double().numpy()
        others = z.copy()
        others[np.arange(len(y)), y] = -np.inf
        out[label] = z[np.arange(len(y)), y] - logsumexp(others, axis=1)
    return out


# ------------------------------------------------------------------- the canaries


def test_audit_canaries_are_fresh_records_half_of_them_in_the_first_requester(
    tmp_path: Path,
) -> None:
    base = federated_data(small_config(tmp_path))
    config = small_config(
        tmp_path, "privacy.mode=local", "privacy.audit_canaries=40", "unlearning.requesters=[2, 1]"
    )
    world = federated_data(config)
    assert world.audit_client == 2
    canaries = world.audit_canaries
    assert canaries is not None and len(canaries) == 40
    # Ids past every real record and every memorization canary, one after another.
    real = len(base.clients.pool) + len(base.test) + len(base.server_unlabelled)
    last_memorized = max(base.memorization_ids.max(), base.memorization_holdout.ids.max())
    assert canaries.ids[0] == max(real, last_memorized + 1)
    np.testing.assert_array_equal(np.diff(canaries.ids), 1)
    # Inclusion: the documented seeded coin, recorded.
    coin = np.random.default_rng(derive_seed(0, "dp-audit-inclusion") % 2**32).random(40)
    np.testing.assert_array_equal(world.audit_included, coin < 0.5)
    # The requester's data is its own followed by the included canaries; nobody else's
    # data changes.
    own, planted = base.client(2), canaries.subset(np.flatnonzero(world.audit_included))
    np.testing.assert_array_equal(world.client(2).ids, np.concatenate([own.ids, planted.ids]))
    np.testing.assert_array_equal(world.client(2).x, np.concatenate([own.x, planted.x]))
    for c in (0, 1, 3):
        np.testing.assert_array_equal(world.client(c).ids, base.client(c).ids)
        np.testing.assert_array_equal(world.client(c).x, base.client(c).x)
    # Another seed draws other canaries and other coins.
    other = with_audit_canaries(base, 40, 2, seed=1)
    assert not np.array_equal(other.audit_included, world.audit_included)
    included = int(world.audit_included.sum())
    assert f"DP audit: 40 canaries, {included} of them in client 2's data" in (
        check_experiment(config)
    )


def test_without_the_audit_the_world_and_the_run_are_unchanged(
    small_run: ExperimentResult, tmp_path: Path
) -> None:
    plain = small_config(tmp_path, "privacy.mode=local")
    off = small_config(tmp_path, "privacy.mode=local", "privacy.audit_canaries=0")
    assert federated_data(off) is federated_data(plain)
    assert federated_data(off).audit_canaries is None
    metrics = json.loads((small_run.run_dir / "metrics.json").read_text())
    assert "dp_audit" not in metrics
    assert not (small_run.run_dir / "dp_audit.npz").exists()
    assert "audited eps" not in (small_run.run_dir / "comparison.md").read_text()


def test_the_audit_needs_dp_and_a_requester(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="privacy.audit_canaries = 5 audits differential"):
        small_config(tmp_path, "privacy.audit_canaries=5")
    with pytest.raises(ConfigError, match="first of unlearning.requesters, which is empty"):
        small_config(
            tmp_path, "privacy.mode=local", "privacy.audit_canaries=5", "unlearning.requesters=[]"
        )
    with pytest.raises(ConfigError, match="privacy.audit_canaries"):
        small_config(tmp_path, "privacy.mode=local", "privacy.audit_canaries=-1")


# ------------------------------------------------------------------- a local-DP run


def test_every_bound_is_recomputed_from_the_run_folder(local_run: ExperimentResult) -> None:
    run_dir = local_run.run_dir
    audit = json.loads((run_dir / "metrics.json").read_text())["dp_audit"]
    saved = read_dp_audit(run_dir)
    world = federated_data(local_run.config)
    np.testing.assert_array_equal(saved["ids"], world.audit_canaries.ids)
    np.testing.assert_array_equal(saved["included"], world.audit_included)
    assert audit["client"] == 0 and audit["canaries"] == 100
    assert audit["included"] == int(saved["included"].sum())
    # The scores, from the saved models by hand.
    phi = hand_phi(run_dir, local_run.config, world.audit_canaries.x, world.audit_canaries.y)
    for label, values in phi.items():
        np.testing.assert_allclose(saved[f"phi/{label}"], values, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(saved["scores/training"], saved["phi/original"])
    audits = {"training": audit["training"], **audit["unlearning"]}
    assert set(audit["unlearning"]) == {"federaser", "retrain"}
    for name, entry in audits.items():
        key = "scores/training" if name == "training" else f"scores/unlearning/{name}"
        if name != "training":
            np.testing.assert_array_equal(saved[key], saved["phi/original"] - saved[f"phi/{name}"])
        again = one_run_audit(
            saved[key], saved["included"], delta=entry["delta"], beta=entry["beta"]
        )
        assert (entry["m"], entry["r"], entry["v"]) == (100, again.guesses, again.correct)
        assert entry["epsilon_lower"] == again.epsilon_lower
        assert (entry["beta"], entry["delta"]) == (0.05, 1e-5)


def test_the_bound_faces_the_audit_clients_epsilon_and_stays_under_it(
    local_run: ExperimentResult,
) -> None:
    metrics = json.loads((local_run.run_dir / "metrics.json").read_text())
    training = metrics["dp_audit"]["training"]
    accounted = metrics["privacy"]["accounts"]["0"]["train"]["epsilon"]
    assert training["epsilon_accounted"] == accounted
    assert 0 <= training["epsilon_lower"] <= accounted
    # No method certifies its release: nothing to face.
    assert all(e["epsilon_accounted"] is None for e in metrics["dp_audit"]["unlearning"].values())
    with open(local_run.run_dir / "comparison.csv") as handle:
        rows = {r["model"]: r for r in csv.DictReader(handle)}
    assert float(rows["original"]["audited_epsilon"]) == training["epsilon_lower"]
    lower = metrics["dp_audit"]["unlearning"]["federaser"]["epsilon_lower"]
    assert float(rows["federaser"]["audited_epsilon"]) == lower
    assert metrics["table_columns"]["federaser"] == {
        **metrics["table_columns"]["federaser"],
        "audited_epsilon": lower,
        "training_audited_epsilon": training["epsilon_lower"],
    }


def test_no_release_audit_when_the_canaries_client_stays(local_run: ExperimentResult) -> None:
    world, m = federated_data(local_run.config), local_run.config.model
    info = world.info
    report = run_dp_audit(
        world,
        local_run.models,
        lambda: build_model(m.name, info.input_shape, info.num_classes, m.hidden, 0),
        training_epsilon=1.0,
        certified={},
        forgotten_clients=[1],
        delta=1e-5,
        beta=0.05,
    )
    assert report.unlearning == {}
    assert "client 0" in report.unlearning_skipped
    assert report.training["epsilon_accounted"] == 1.0


def test_fedrecovery_certifies_its_gaussian_mechanism_only_when_calibrated() -> None:
    assert FedRecovery(epsilon=2.0, delta=1e-3).certified_privacy() == (2.0, 1e-3)
    assert FedRecovery(noise_std=0.01).certified_privacy() is None


def test_central_dp_faces_the_central_epsilon_and_a_certified_method_its_own(
    tmp_path: Path,
) -> None:
    from fedunlearn.apps.simulation import simulate

    config = small_config(
        tmp_path,
        "privacy.mode=central",
        "privacy.noise_multiplier=0.5",
        "privacy.audit_canaries=60",
        "unlearning.methods=['fedrecovery']",
        "unlearning.fedrecovery.epsilon=3.0",
        "unlearning.fedrecovery.delta=0.001",
    )
    metrics = simulate(config, show_progress=False).metrics
    audit = metrics.dp_audit
    assert audit is not None and metrics.privacy is not None
    assert audit["training"]["epsilon_accounted"] == metrics.privacy.training_epsilon
    assert audit["training"]["epsilon_lower"] <= metrics.privacy.training_epsilon
    certified = audit["unlearning"]["fedrecovery"]
    assert (certified["epsilon_accounted"], certified["delta"]) == (3.0, 0.001)
    assert audit["unlearning"]["retrain"]["epsilon_accounted"] is None


def test_a_barely_private_run_with_many_canaries_gets_a_clearly_positive_bound(
    tmp_path: Path,
) -> None:
    from fedunlearn.apps.simulation import simulate

    config = small_config(
        tmp_path,
        "privacy.mode=local",
        "privacy.noise_multiplier=0.01",
        "privacy.max_grad_norm=10",
        "privacy.audit_canaries=1000",
        "training.local_epochs=5",
        "training.rounds=8",
        "model.hidden=128",
    )
    metrics = simulate(config, show_progress=False).metrics
    training = metrics.dp_audit["training"]
    # Measured 2.48 (291 of 300 guesses right); the accountant's epsilon is in the millions.
    assert training["epsilon_lower"] > 1.5
    assert training["epsilon_lower"] <= training["epsilon_accounted"]
    assert not math.isinf(training["epsilon_accounted"])
