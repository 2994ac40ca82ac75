"""The default experiment over several seeds, against the targets it must meet.

    python benchmarks/default_experiment.py [--seeds 0 1 2] [--backend threads]

Prints, per seed and as mean/std: the original model's canary attack success rate
(target >= 0.80), FedEraser's attack success and clean accuracy against retraining
(within 0.10 and 0.03), FedEraser's client epochs against retraining's (>= 2x fewer),
and the wall time of the whole run (target < 180 s on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--backend",
        default=ExperimentConfig().simulation.backend,
        choices=("ray", "threads", "inline"),
        help="where the clients run (default: the experiment's default backend)",
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in args.seeds:
            config = ExperimentConfig().with_overrides(
                [f"seed={seed}", f"simulation.backend={args.backend}", f"output.dir={out}"]
            )
            started = time.perf_counter()
            metrics = simulate(config, show_progress=False).metrics
            seconds = time.perf_counter() - started
            m, cost = metrics.models, metrics.cost
            rows.append(
                {
                    "seed": seed,
                    "original_asr": m["original"]["attack_success_rate"],
                    "federaser_asr": m["federaser"]["attack_success_rate"],
                    "retrain_asr": m["retrain"]["attack_success_rate"],
                    "federaser_acc": m["federaser"]["clean_accuracy"],
                    "retrain_acc": m["retrain"]["clean_accuracy"],
                    "epochs_saving": cost.methods["retrain"]["client_epochs"]
                    / cost.methods["federaser"]["client_epochs"],
                    "run_seconds": seconds,
                }
            )
            print(_line(rows[-1]), flush=True)
    print(
        "mean  "
        + "  ".join(f"{k}={np.mean([r[k] for r in rows]):.3f}" for k in rows[0] if k != "seed")
    )
    print(
        "std   "
        + "  ".join(f"{k}={np.std([r[k] for r in rows]):.3f}" for k in rows[0] if k != "seed")
    )
    ok = all(
        r["original_asr"] >= 0.8
        and abs(r["federaser_asr"] - r["retrain_asr"]) <= 0.10
        and abs(r["federaser_acc"] - r["retrain_acc"]) <= 0.03
        and r["epochs_saving"] >= 2
        and r["run_seconds"] < 180
        for r in rows
    )
    print("targets met on every seed" if ok else "TARGETS MISSED")


def _line(row: dict) -> str:
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


if __name__ == "__main__":
    main()
