"""The default experiment on an idle machine and beside a CPU load, side by side.

    python benchmarks/cpu_load.py [--rounds 20] [--load 2] [--backend threads]

Runs the default experiment (on the default backend unless ``--backend`` names
another) once on an idle machine, then again while ``--load`` other processes spin on
the CPU (a second job on the same machine), and prints both wall times and their ratio.
Torch in every client and in the server uses its CPU share of threads
(fedunlearn.learning.threads); with torch's default of one thread per core, a loaded
run slows by orders of magnitude.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig


def spin(stop: multiprocessing.synchronize.Event) -> None:
    """Keep one core busy until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


def timed_run(rounds: int, backend: str, out: str) -> float:
    config = ExperimentConfig().with_overrides(
        [
            f"training.rounds={rounds}",
            f"simulation.backend={backend}",
            f"output.dir={out}",
            "output.figures=false",
        ]
    )
    started = time.perf_counter()
    simulate(config, show_progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--load", type=int, default=2, help="busy processes beside the run")
    parser.add_argument(
        "--backend",
        default=ExperimentConfig().simulation.backend,
        choices=("ray", "threads", "inline"),
        help="where the clients run (default: the experiment's default backend)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        idle = timed_run(args.rounds, args.backend, out)
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(args.load)]
        for p in spinners:
            p.start()
        try:
            loaded = timed_run(args.rounds, args.backend, out)
        finally:
            stop.set()
            for p in spinners:
                p.join()
    print(f"default experiment, {args.rounds} rounds, backend {args.backend}")
    print(f"idle:                     {idle:7.1f} s")
    print(f"beside {args.load} busy processes: {loaded:7.1f} s")
    print(f"loaded / idle:            {loaded / idle:7.2f}x  (target <= 2.5x)")


if __name__ == "__main__":
    main()
