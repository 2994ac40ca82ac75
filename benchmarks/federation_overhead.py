"""What Flower costs: the default federated training against the same training in a
plain PyTorch loop, measured side by side in one run.

    python benchmarks/federation_overhead.py [--rounds 20] [--repeats 3] [--backend threads]

All three runs train the default model on the default data with the same local
training function, the same seeds and the same FedAvg aggregation:

* ``plain loop``: one process, clients one after another, no Flower;
* ``inline``: Flower's Message API through fedunlearn's in-process grid (messages,
  records and strategy, no Ray), one client after another;
* ``threads``: the same grid with as many clients at once as the machine has cores
  (the default backend);
* ``ray``: Flower's simulation engine (Ray actors, one CPU each).

For the Flower runs it reports the training phase alone and the whole run (start-up,
client discovery, request gathering, shutdown). Ratios are against the plain loop.

Last, ``end to end`` is ``fedunlearn run`` (on the default backend, or ``--backend``)
in a new process, timed from its start to its exit: imports, the backend's start-up
(Ray's with ``--backend ray``), training, the requests, FedEraser, retraining, the
audit, the results folder, everything a user waits for on a first run.
It is measured ``--repeats`` times, each right after a plain loop of its own, and the
ratio printed is the median of those pairs' ratios: on a shared 2-core machine one
pair can be off by 20% either way.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.world import federated_data
from fedunlearn.learning.arrays import load_arrays, model_to_arrays, weighted_average
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import train_locally
from fedunlearn.seeding import derive_seed


def plain_loop(config: ExperimentConfig) -> float:
    """FedAvg by hand; returns seconds (data loading excluded, as in the Flower runs)."""
    world = federated_data(config)
    t, m = config.training, config.model

    def new_model() -> torch.nn.Module:
        return build_model(
            m.name, world.info.input_shape, world.info.num_classes, m.hidden, config.seed
        )

    started = time.perf_counter()
    global_model = model_to_arrays(new_model())
    for server_round in range(1, t.rounds + 1):
        weights, counts = [], []
        for client, data in enumerate(world.clients):
            model = new_model()
            load_arrays(model, global_model)
            train_locally(
                model,
                data,
                epochs=t.local_epochs,
                batch_size=t.batch_size,
                learning_rate=t.learning_rate,
                momentum=t.momentum,
                seed=derive_seed(config.seed, server_round, client),
            )
            weights.append(model_to_arrays(model))
            counts.append(len(data))
        global_model = weighted_average(weights, counts)
    return time.perf_counter() - started


def federated(config: ExperimentConfig, backend: str) -> tuple[float, float]:
    """(training phase seconds, whole run seconds) of the training-only experiment."""
    with tempfile.TemporaryDirectory() as out:
        run = config.with_overrides(
            [
                f"simulation.backend={backend}",
                "unlearning.requesters=[]",
                f"output.dir={out}",
                "output.figures=false",
            ]
        )
        started = time.perf_counter()
        metrics = simulate(run, show_progress=False).metrics
        return metrics.cost.training["wall_seconds"], time.perf_counter() - started


def end_to_end(rounds: int, backend: str) -> float:
    """Seconds of ``fedunlearn run`` (the default experiment) in a new process."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "fedunlearn.cli", "run", "--quiet"]
        command += ["--set", f"training.rounds={rounds}", "--set", f"output.dir={out}"]
        command += ["--set", f"simulation.backend={backend}"]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="pairs of (plain loop, end to end) measured one after the other; the "
        "ratio reported is the median of the pairs' ratios (these machines are noisy)",
    )
    parser.add_argument(
        "--backend",
        default=ExperimentConfig().simulation.backend,
        choices=("ray", "threads", "inline"),
        help="the end-to-end run's backend (default: the experiment's default)",
    )
    args = parser.parse_args()
    config = ExperimentConfig().with_overrides([f"training.rounds={args.rounds}"])
    federated_data(config)  # load and partition once, outside every timing
    loop_threads = torch.get_num_threads()  # before the simulations below pin this process
    pairs = []
    for _ in range(args.repeats):
        pairs.append((plain_loop(config), end_to_end(args.rounds, args.backend)))
    runs = {backend: federated(config, backend) for backend in ("inline", "threads", "ray")}
    plain = statistics.median(p for p, _ in pairs)
    t = config.training
    print(
        f"default training: {config.federation.num_clients} clients x {t.rounds} rounds x "
        f"{t.local_epochs:g} epochs, {config.model.name} on {config.data.dataset}; "
        f"torch threads in the plain loop: {loop_threads}"
    )
    print(f"{'run':<32}{'seconds':>10}{'x plain loop':>14}")
    rows = [("plain PyTorch loop (median)", plain)]
    for backend, (phase, total) in runs.items():
        rows += [(f"flower {backend}, training", phase), (f"flower {backend}, whole run", total)]
    for name, seconds in rows:
        print(f"{name:<32}{seconds:>10.1f}{seconds / plain:>14.2f}")
    for n, (loop, whole) in enumerate(pairs, start=1):
        print(
            f"{f'pair {n}: end to end / its loop':<32}{whole:>10.1f}{whole / loop:>14.2f}"
            f"   (loop {loop:.1f} s)"
        )
    ratio = statistics.median(whole / loop for loop, whole in pairs)
    print(f"{f'end to end ({args.backend})':<32}{'median':>10}{ratio:>14.2f}")


if __name__ == "__main__":
    main()
