"""The whole pipeline on Flower's deployment engine, as docs/deployment.md runs it: a
SuperLink with TLS and SuperNode authentication, one authenticated SuperNode per
client on loopback, the experiment written by ``fedunlearn app`` and started with
``flwr run``. Every process the test starts is stopped by its process group."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = ROOT / "examples" / "deployment" / "make-credentials.sh"
BIN = Path(sys.executable).parent
CLIENTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f} s")


class Processes:
    """Processes started in their own session, stopped by process group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.started:  # children (SuperExec, app processes) left in the group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    env = {
        **os.environ,
        "FLWR_HOME": str(tmp_path / "flwr"),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
    }
    (tmp_path / "logs").mkdir()
    procs = Processes(env, tmp_path / "logs")
    try:
        yield procs
    finally:
        procs.stop_all()


def flwr(procs: Processes, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "flwr"), *args],
        env=procs.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_tls_and_authenticated_supernodes_run_the_pipeline_and_refuse_a_forged_request(
    tmp_path: Path, processes: Processes
) -> None:
    creds = tmp_path / "creds"
    subprocess.run(["bash", str(CREDENTIALS), str(creds), str(CLIENTS + 1)], check=True)
    port = free_port()
    superlink = processes.start(
        "superlink",
        str(BIN / "flower-superlink"),
        "--ssl-ca-certfile", str(creds / "ca.pem"),
        "--ssl-certfile", str(creds / "superlink.pem"),
        "--ssl-keyfile", str(creds / "superlink.key"),
        "--enable-supernode-auth",
        "--disable-runtime-dependency-installation",
        "--host", "127.0.0.1",
        "--port", str(port),
    )  # fmt: skip
    wait_for_port(port, 60)
    home = tmp_path / "flwr"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\n'
        f'address = "127.0.0.1:{port}"\nroot-certificates = "{creds / "ca.pem"}"\n'
    )

    registered = []
    for i in range(CLIENTS):  # the last key pair stays unregistered
        reply = flwr(processes, "supernode", "register", str(creds / f"supernode-{i}.pub"),
                     "loopback", "--format", "json")  # fmt: skip
        assert reply.returncode == 0, reply.stdout + reply.stderr
        answer = json.loads(reply.stdout)
        assert answer["success"], answer
        registered.append(int(answer["node-id"]))

    def supernode(i: int, key: int, name: str = "") -> subprocess.Popen[bytes]:
        return processes.start(
            name or f"supernode-{i}",
            str(BIN / "flower-supernode"),
            "--superlink", f"127.0.0.1:{port}",
            "--root-certificates", str(creds / "ca.pem"),
            "--auth-supernode-private-key", str(creds / f"supernode-{key}"),
            "--port", str(free_port()),
            "--node-config", f"partition-id={i} num-partitions={CLIENTS}",
        )  # fmt: skip

    stranger = supernode(
        0, key=CLIENTS, name="stranger"
    )  # an unregistered key, claiming partition 0
    for i in range(CLIENTS):
        supernode(i, key=i)

    results = tmp_path / "results"
    app = tmp_path / "app"
    written = subprocess.run(
        [
            str(BIN / "fedunlearn"), "app", "--out", str(app),
            "--set", "name=deployed",
            "--set", f"federation.num_clients={CLIENTS}",
            "--set", "federation.connect_timeout=90",
            "--set", "training.rounds=2",
            "--set", "data.dataset=digits",
            "--set", "model.name=mlp",
            "--set", "unlearning.methods=['federaser']",
            "--set", "roles.2='malicious-unlearner'",
            "--set", "roles.malicious-unlearner.behaviour='forge'",
            "--set", "roles.malicious-unlearner.victim=1",
            "--set", f"output.dir='{results}'",
        ],
        env=processes.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr

    run = flwr(processes, "run", str(app), "loopback", "--stream", timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert superlink.poll() is None, "the SuperLink stopped during the run"
    # The SuperLink refused the node whose key was never registered.
    assert stranger.wait(timeout=60) != 0
    assert "Failed to activate SuperNode" in (tmp_path / "logs" / "stranger.log").read_text()

    (run_dir,) = results.iterdir()  # flwr run exits 0 even when a run fails: read the folder
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete", log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "complete" and not metrics["errors"] and not metrics["missing"]
    assert set(metrics["models"]) == {"original", "federaser", "retrain"}
    assert metrics["forgotten_clients"] == [0]
    verdicts = {(r["requester"], r["target_client"]): r for r in metrics["requests"]}
    assert verdicts[(0, 0)]["accepted"]
    forged = verdicts[(2, 1)]
    assert not forged["accepted"] and forged["check"] == "owner_only", forged
    # The canary of the forgotten client is gone, as after retraining.
    asr = {m: metrics["models"][m]["attack_success_rate"] for m in metrics["models"]}
    assert asr["retrain"] < 0.1 and asr["federaser"] < 0.1, asr
    with (run_dir / "comparison.csv").open() as handle:
        assert {row["model"] for row in csv.DictReader(handle)} >= {"federaser", "retrain"}
    for name in ("config.toml", "rounds.csv", "comparison.md"):
        assert (run_dir / name).is_file(), name
    # Every registered node served: the run's log names three connected clients.
    assert f"{CLIENTS} clients connected" in log
    listed = flwr(processes, "supernode", "list", "loopback", "--format", "json")
    assert all(str(n) in listed.stdout for n in registered), listed.stdout
