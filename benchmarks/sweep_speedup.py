"""What a sweep saves: 8 runs as one sweep against the same 8 runs one by one.

    python benchmarks/sweep_speedup.py [--rounds 10] [--backend ray]

The 8 runs: FedEraser with 4 calibration ratios x 2 seeds on the default scenario
(shortened to ``--rounds``). One by one, each run starts the simulation, loads the
data, trains, retrains and unlearns. As a sweep, the 4 ratios of a seed share one
training and one retraining, and all 8 share one simulation start-up. Both are timed
in this process, one after the other, and the ratio printed; the metrics of every run
are checked to be the same both ways.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.studies.plan import Sweep
from fedunlearn.studies.sweep import run_sweep

RATIOS = [0.25, 0.5, 0.75, 1.0]
SEEDS = [0, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--backend", default="ray", choices=("ray", "threads", "inline"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = ExperimentConfig().with_overrides(
            [
                "name=bench",
                f"training.rounds={args.rounds}",
                f"simulation.backend={args.backend}",
                "output.figures=false",
            ]
        )
        sweep = Sweep.from_table(
            {"seeds": SEEDS, "grid": {"unlearning.federaser.r": RATIOS}, "out": f"{tmp}/sweep"},
            base,
        )
        runs = sweep.plan()
        started = time.perf_counter()
        one_by_one = {}
        for run in runs:
            config = run.config.with_overrides([f"output.run_dir={tmp}/single/{run.run_id}"])
            one_by_one[run.run_id] = simulate(config, show_progress=False).metrics.models
        single_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = run_sweep(sweep)
        sweep_seconds = time.perf_counter() - started
        same = all(
            json.loads((Path(run.run_dir) / "metrics.json").read_text())["models"]
            == one_by_one[run.run_id]
            for run in runs
        )
    print(
        f"{len(runs)} runs ({len(RATIOS)} ratios x {len(SEEDS)} seeds), "
        f"{args.rounds} rounds, backend {args.backend}"
    )
    print(f"one by one: {single_seconds:7.1f} s")
    print(f"as a sweep: {sweep_seconds:7.1f} s  ({len(result.ran)} runs)")
    print(f"speed-up:   {single_seconds / sweep_seconds:7.2f}x")
    print(f"same metrics both ways: {same}")


if __name__ == "__main__":
    main()
