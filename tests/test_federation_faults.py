"""Clients that crash, drop out or straggle: rounds go on without them where
``federation.min_reply_fraction`` allows, ``metrics.json`` says who was missing where,
and a straggler is cut off at ``federation.timeout`` (no hang)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.federation.registry import FederationError
from fedunlearn.reporting.folder import run_state
from tests.conftest import small_config


def test_a_straggler_is_cut_off_and_the_round_goes_on_without_it(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        'roles.3="tests.roles:Straggler"',
        "federation.timeout=3",
        "federation.min_reply_fraction=0.5",
        'unlearning.methods=["finetune"]',
    )
    started = time.monotonic()
    result = simulate(config, show_progress=False)
    assert time.monotonic() - started < 60
    assert result.metrics.status == "complete"
    assert result.metrics.missing == {"training": {"2": [3]}}
    assert result.history.participation[2] == (0, 1, 2, 3)  # sampled, did not reply


def test_a_straggler_past_the_quorum_ends_the_run_within_its_timeout(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = small_config(
        tmp_path, 'roles.3="tests.roles:Straggler"', "federation.timeout=3", f"output.run_dir={run}"
    )
    started = time.monotonic()
    with pytest.raises(FederationError, match="client 3: no reply before the timeout"):
        simulate(config, show_progress=False)
    assert time.monotonic() - started < 30  # 3 s of timeout, plus the rounds before
    assert run_state(run) == "failed"


def test_a_client_dropping_out_of_calibration_is_recorded_and_the_method_goes_on(
    tmp_path: Path,
) -> None:
    config = small_config(
        tmp_path,
        'roles.3="tests.roles:DropsOutOfCalibration"',
        "federation.min_reply_fraction=0.5",
        "history.delta_t=1",
    )
    metrics = simulate(config, show_progress=False).metrics
    assert metrics.status == "complete" and "federaser" in metrics.models
    # Calibration rounds 2, 3, 4 (round 1 reuses stored updates): client 3 missing in each.
    assert metrics.missing["federaser"] == {"2": [3], "3": [3], "4": [3]}
    assert "training" not in metrics.missing
