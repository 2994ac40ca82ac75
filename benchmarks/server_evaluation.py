"""What the server's evaluation after each round costs: SmallCNN's prediction path
against its layers run as written, side by side.

    python benchmarks/server_evaluation.py [--repeats 15]

Each repeat predicts the default test set and its triggered copy (what the server
measures after every round: clean accuracy and attack success rate) on one torch
thread, as the server does, once each way, the order swapped every repeat:

* ``prediction path``: ``SmallCNN.forward`` without autograd (pooling by elementwise
  maxima, then the ReLU on the pooled values);
* ``layers as written``: conv, ReLU, ``nn.MaxPool2d``, twice, then the dense layers.

Prints the median seconds of each, their ratio, and whether the logits are equal bit
for bit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.world import federated_data
from fedunlearn.learning.models import build_model
from fedunlearn.learning.training import predict_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ExperimentConfig()
    world = federated_data(config)
    m, info = config.model, world.info
    model = build_model(m.name, info.input_shape, info.num_classes, m.hidden, config.seed)
    model.eval()
    inputs = [world.test.x, world.triggered_test.x]

    @torch.no_grad()
    def as_written(x: np.ndarray, batch_size: int = 128) -> np.ndarray:
        batches = (torch.as_tensor(x[i : i + batch_size]) for i in range(0, len(x), batch_size))
        return np.concatenate([model.classifier(model.features(b)).numpy() for b in batches])

    ways: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "prediction path": lambda x: predict_logits(model, x),
        "layers as written": as_written,
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    logits: dict[str, list[np.ndarray]] = {}
    for repeat in range(args.repeats):
        order = list(ways.items())
        for name, predict in order if repeat % 2 == 0 else reversed(order):
            started = time.perf_counter()
            logits[name] = [predict(x) for x in inputs]
            seconds[name].append(time.perf_counter() - started)
    images = sum(len(x) for x in inputs)
    print(f"predicting {images} images ({m.name} on {config.data.dataset}), one thread:")
    for name, values in seconds.items():
        print(f"  {name:<20}{statistics.median(values):8.3f} s (median of {args.repeats})")
    fast = statistics.median(seconds["prediction path"])
    written = statistics.median(seconds["layers as written"])
    print(f"  as written / prediction path: {written / fast:.2f}x")
    equal = all(np.array_equal(a, b) for a, b in zip(*logits.values(), strict=True))
    print(f"  logits equal bit for bit: {equal}")


if __name__ == "__main__":
    main()
