"""The quickstart-unlearning example under Flower's own runtime: ``flwr run`` on a local
simulation (a SuperLink started for the test, stopped by its PID)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart-unlearning"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def superlinks_on(port: int) -> list[int]:
    """PIDs of SuperLink processes listening on ``port`` (the ones this test started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"flower-superlink" in c for c in cmd) and str(port).encode() in cmd:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_flwr_run_records_history_and_forgets_the_canary_as_retraining_does(
    tmp_path: Path,
) -> None:
    port, control = free_port(), free_port()
    env = {
        **os.environ,
        "FLWR_HOME": str(tmp_path / "flwr"),
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(port),
        "FLWR_LOCAL_CONTROL_API_PORT": str(control),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
    }
    results = tmp_path / "summary.json"
    flwr = Path(sys.executable).parent / "flwr"
    try:
        run = subprocess.run(
            [
                str(flwr),
                "run",
                str(EXAMPLE),
                "--run-config",
                f"results-file='{results}'",
                "--federation-config",
                "num-supernodes=5 client-resources-num-cpus=1",
                "--stream",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        for pid in superlinks_on(port):
            os.kill(pid, signal.SIGTERM)
        time.sleep(1)
        for pid in superlinks_on(port):
            os.kill(pid, signal.SIGKILL)
    # flwr run exits 0 even when the run failed: the summary file is the proof.
    assert results.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(results.read_text())
    assert summary["history"]["kept_rounds"] == [1, 3, 5, 7, 9]
    assert summary["history"]["clients"] == [0, 1, 2, 3, 4]
    assert summary["history"]["keyed_by"] == ["partition-id"]
    original, erased, retrained = (
        summary["models"][k] for k in ("original", "federaser", "retrain")
    )
    assert original["attack_success_rate"] > 0.5  # client 0's canary was learned
    assert erased["attack_success_rate"] <= retrained["attack_success_rate"] + 0.1
    assert abs(erased["clean_accuracy"] - retrained["clean_accuracy"]) <= 0.05
    epochs = summary["client_epochs"]
    assert epochs["federaser"] * 2 <= epochs["retrain"]
    assert not superlinks_on(port)
