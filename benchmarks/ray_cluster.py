"""A simulation on a multi-node Ray cluster: where the clients ran.

    python benchmarks/ray_cluster.py [--clients 6] [--rounds 3] [--address HOST:PORT]

Without ``--address`` it starts a two-node cluster on this machine (a head and a worker
node, each ``ray start --block`` with 1 CPU and a resource of its own), runs a small
experiment on it through ``RAY_ADDRESS`` and stops both nodes by their process groups.
With ``--address`` it uses a cluster you started (docs/benchmarks.md shows the steps).

Every client reports, for each message it trains on, the Ray node and process that ran
it; the script prints the clients and actors per node and the run's wall time. The
clients are placed by Flower's Ray backend (one actor per ``client_cpus`` CPUs on every
node), so a cluster of two 1-CPU nodes runs two actors, one per node.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from fedunlearn.clients.honest import HonestClient

from fedunlearn.federation.protocol import TrainInstruction, TrainReport
from fedunlearn.learning.arrays import Arrays


def placement_file(run_name: str) -> Path:
    """Where the clients of run ``run_name`` note their placement (one machine's /tmp:
    environment variables do not reach the workers of a cluster started apart)."""
    return Path(tempfile.gettempdir()) / f"{run_name}-placement.jsonl"


class ReportsPlacement(HonestClient):
    """An honest client that notes which Ray node and process trained it."""

    def fit(self, arrays: Arrays, instruction: TrainInstruction) -> tuple[Arrays, TrainReport]:
        import ray

        line = {
            "client": self.client_id,
            "round": instruction.server_round,
            "phase": instruction.phase,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }
        with placement_file(self.config.name).open("a") as handle:
            handle.write(json.dumps(line) + "\n")
        return super().fit(arrays, instruction)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(log: Path, *args: str) -> subprocess.Popen[bytes]:
    ray = Path(sys.executable).parent / "ray"
    command = [str(ray), "start", "--block", "--disable-usage-stats", *args]
    return subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for_nodes(address: str, count: int, timeout: float = 90) -> None:
    import warnings

    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Ray's note on GPU env variables
        ray.init(address=address, logging_level="ERROR")
    try:
        deadline = time.monotonic() + timeout
        while len([n for n in ray.nodes() if n["Alive"]]) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} Ray nodes joined {address}")
            time.sleep(1)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--address", help="an existing cluster (default: start one here)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fedunlearn-ray-cluster-"))
    nodes: list[subprocess.Popen[bytes]] = []
    address = args.address
    try:
        if address is None:
            port = free_port()
            address = f"127.0.0.1:{port}"
            head = ["--head", f"--port={port}", "--include-dashboard=false"]
            nodes.append(start_node(work / "head.log", *head, "--node-ip-address=127.0.0.1",
                                    "--num-cpus=1", '--resources={"head_node": 1}'))  # fmt: skip
            time.sleep(5)
            nodes.append(start_node(work / "worker.log", f"--address={address}",
                                    "--node-ip-address=127.0.0.1", "--num-cpus=1",
                                    '--resources={"worker_node": 1}'))  # fmt: skip
            wait_for_nodes(address, 2)
        os.environ["RAY_ADDRESS"] = address
        name = f"ray-cluster-{os.getpid()}"
        # The role is found as ray_cluster:ReportsPlacement on the script's folder, which
        # Ray puts on its workers' sys.path too (a site package is named "benchmarks").
        sys.path.insert(0, str(Path(__file__).resolve().parent))

        from fedunlearn.apps.simulation import simulate
        from fedunlearn.config.experiment import ExperimentConfig

        config = ExperimentConfig().with_overrides(
            [
                f"name={name}",
                "simulation.backend=ray",
                "data.dataset=digits",
                "model.name=mlp",
                f"federation.num_clients={args.clients}",
                f"training.rounds={args.rounds}",
                "roles.default='ray_cluster:ReportsPlacement'",
                'unlearning.methods=["federaser"]',
                f"output.dir={work / 'results'}",
                "output.figures=false",
            ]
        )
        started = time.perf_counter()
        result = simulate(config, show_progress=False)
        seconds = time.perf_counter() - started
    finally:
        for node in nodes:
            os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=60)
        if nodes:  # killed, not stopped: Ray leaves the address of the cluster behind
            stale = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
            if stale.is_file() and stale.read_text().strip().endswith(address.split(":")[1]):
                stale.unlink()
    placed = placement_file(name)
    lines = [json.loads(x) for x in placed.read_text().splitlines()]
    placed.unlink()
    clients: dict[str, set[int]] = defaultdict(set)
    actors: dict[str, set[int]] = defaultdict(set)
    for line in lines:
        clients[line["node"]].add(line["client"])
        actors[line["node"]].add(line["pid"])
    print(f"Ray cluster {address}: {len(clients)} nodes ran clients; run {result.metrics.status}")
    for node in sorted(clients):
        print(
            f"  node {node[:12]}  actors {len(actors[node])}  "
            f"clients {sorted(clients[node])}  train messages "
            f"{sum(1 for x in lines if x['node'] == node)} "
            f"({', '.join(sorted({x['phase'] for x in lines if x['node'] == node}))})"
        )
    print(f"wall time {seconds:.1f} s ({args.clients} clients, {args.rounds} rounds, FedEraser)")


if __name__ == "__main__":
    main()
