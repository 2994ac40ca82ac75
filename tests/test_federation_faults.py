"""Clients that crash, drop out or straggle: rounds go on without them where
``federation.min_reply_fraction`` allows, ``metrics.json`` says who was missing where,
and a straggler is cut off at ``federation.timeout`` (no hang). Each case runs on every
backend; the Ray runs are marked slow (CI runs them)."""

from __future__ import annotations

import faulthandler
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.federation.registry import FederationError
from fedunlearn.reporting.folder import run_state
from tests.conftest import small_config

BACKENDS = ["inline", "threads", pytest.param("ray", marks=pytest.mark.slow)]
STARTUP = {"inline": 0.0, "threads": 0.0, "ray": 45.0}
"""Seconds a backend may take to start and stop (Ray: its processes and actors)."""


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A run that hangs (the failure these tests look for) ends the test process with
    every thread's traceback after 5 minutes, instead of holding CI until its limit."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_straggler_is_cut_off_and_the_round_goes_on_without_it(
    tmp_path: Path, backend: str
) -> None:
    config = small_config(
        tmp_path,
        f"simulation.backend={backend}",
        'roles.3="tests.roles:Straggler"',
        "federation.timeout=3",
        "federation.min_reply_fraction=0.5",
        'unlearning.methods=["finetune"]',
    )
    started = time.monotonic()
    result = simulate(config, show_progress=False)
    assert time.monotonic() - started < 60 + STARTUP[backend]
    assert result.metrics.status == "complete"
    assert result.metrics.missing == {"training": {"2": [3]}}
    assert result.history.participation[2] == (0, 1, 2, 3)  # sampled, did not reply


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_straggler_past_the_quorum_ends_the_run_within_its_timeout(
    tmp_path: Path, backend: str
) -> None:
    run = tmp_path / "run"
    config = small_config(
        tmp_path,
        f"simulation.backend={backend}",
        'roles.3="tests.roles:Straggler"',
        "federation.timeout=3",
        f"output.run_dir={run}",
    )
    started = time.monotonic()
    with pytest.raises(FederationError, match="client 3: no reply before the timeout"):
        simulate(config, show_progress=False)
    # 3 s of timeout plus the rounds before; the straggler sleeps for an hour.
    assert time.monotonic() - started < 30 + STARTUP[backend]
    assert run_state(run) == "failed"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crashing_client_is_left_out_of_its_round_and_recorded(
    tmp_path: Path, backend: str
) -> None:
    config = small_config(
        tmp_path,
        f"simulation.backend={backend}",
        'roles.3="tests.roles:CrashesInRoundThree"',
        "federation.min_reply_fraction=0.5",
        'unlearning.methods=["finetune"]',
    )
    started = time.monotonic()
    metrics = simulate(config, show_progress=False).metrics
    assert time.monotonic() - started < 60 + STARTUP[backend]
    assert metrics.status == "complete"
    # It crashes in round 3 of training and of retraining (fine-tuning has no round 3).
    assert metrics.missing == {"training": {"3": [3]}, "retrain": {"3": [3]}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_client_dropping_out_of_calibration_is_recorded_and_the_method_goes_on(
    tmp_path: Path, backend: str
) -> None:
    config = small_config(
        tmp_path,
        f"simulation.backend={backend}",
        'roles.3="tests.roles:DropsOutOfCalibration"',
        "federation.min_reply_fraction=0.5",
        "history.delta_t=1",
    )
    metrics = simulate(config, show_progress=False).metrics
    assert metrics.status == "complete" and "federaser" in metrics.models
    # Calibration rounds 2, 3, 4 (round 1 reuses stored updates): client 3 missing in each.
    assert metrics.missing["federaser"] == {"2": [3], "3": [3], "4": [3]}
    assert "training" not in metrics.missing
