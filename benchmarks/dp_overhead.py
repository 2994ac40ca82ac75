"""What DP-SGD costs: Opacus local training against plain training of the same model
on the same data, timed side by side in one run.

    python benchmarks/dp_overhead.py [--repeats 3] [--epochs 2]

Trains the default CNN on one client's data (400 MNIST images, batch 32), as a client
does in one round, with plain SGD and with Opacus DP-SGD (per-sample gradients, clipping,
noise, Poisson sampling). Prints the median time of each and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.world import federated_data
from fedunlearn.defenses.privacy import DPTraining, train_privately
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import train_locally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()
    config = ExperimentConfig()
    world = federated_data(config)
    data = world.client(1)
    t, m = config.training, config.model

    def model() -> torch.nn.Module:
        return build_model(m.name, world.info.input_shape, world.info.num_classes, m.hidden, 0)

    plain, private = [], []
    for repeat in range(args.repeats):
        net = model()
        started = time.perf_counter()
        train_locally(
            net,
            data,
            epochs=args.epochs,
            batch_size=t.batch_size,
            learning_rate=t.learning_rate,
            momentum=t.momentum,
            seed=repeat,
        )
        plain.append(time.perf_counter() - started)
        net = model()
        started = time.perf_counter()
        train_privately(
            net,
            data,
            epochs=args.epochs,
            batch_size=t.batch_size,
            learning_rate=t.learning_rate,
            momentum=t.momentum,
            seed=repeat,
            dp=DPTraining(noise_multiplier=1.0, max_grad_norm=1.0),
            history=[],
        )
        private.append(time.perf_counter() - started)
    p, q = statistics.median(plain), statistics.median(private)
    print(
        f"{len(data)} records, batch {t.batch_size}, {args.epochs:g} epochs, {m.name}; "
        f"torch threads {torch.get_num_threads()}; median of {args.repeats}"
    )
    print(f"plain SGD : {p:6.2f} s")
    print(f"DP-SGD    : {q:6.2f} s")
    print(f"ratio     : {q / p:6.2f}x")


if __name__ == "__main__":
    main()
