"""What the server's evaluation after each round costs, with SmallCNN's pooling in
channels-last memory against torch's contiguous pooling, side by side.

    python benchmarks/server_evaluation.py [--repeats 15]

Each repeat predicts the default test set and its triggered copy (what the server
measures after every round: clean accuracy and attack success rate) on one torch
thread, as the server does, once with each pooling, the order swapped every repeat.
Prints the median seconds of each, their ratio, and whether the logits are equal bit
for bit.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.world import federated_data
from fedunlearn.learning.models import ChannelsLastMaxPool2d, build_model
from fedunlearn.learning.training import predict_logits


def with_contiguous_pooling(model: nn.Module) -> nn.Module:
    """``model`` with every :class:`ChannelsLastMaxPool2d` replaced by torch's own."""
    for name, child in model.named_children():
        if isinstance(child, ChannelsLastMaxPool2d):
            pool = nn.MaxPool2d(
                child.kernel_size,
                child.stride,
                child.padding,
                child.dilation,
                ceil_mode=child.ceil_mode,
            )
            setattr(model, name, pool)
        else:
            with_contiguous_pooling(child)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ExperimentConfig()
    world = federated_data(config)
    m = config.model

    def model() -> nn.Module:
        info = world.info
        return build_model(m.name, info.input_shape, info.num_classes, m.hidden, config.seed)

    models = {
        "channels-last pooling": model(),
        "contiguous pooling": with_contiguous_pooling(model()),
    }
    inputs = [world.test.x, world.triggered_test.x]
    seconds: dict[str, list[float]] = {name: [] for name in models}
    logits: dict[str, list[np.ndarray]] = {}
    for repeat in range(args.repeats):
        order = list(models.items())
        for name, net in order if repeat % 2 == 0 else reversed(order):
            started = time.perf_counter()
            logits[name] = [predict_logits(net, x) for x in inputs]
            seconds[name].append(time.perf_counter() - started)
    images = sum(len(x) for x in inputs)
    print(f"predicting {images} images ({m.name} on {config.data.dataset}), one thread:")
    for name, values in seconds.items():
        print(f"  {name:<24}{statistics.median(values):8.3f} s (median of {args.repeats})")
    channels_last = statistics.median(seconds["channels-last pooling"])
    contiguous = statistics.median(seconds["contiguous pooling"])
    print(f"  contiguous / channels-last: {contiguous / channels_last:.2f}x")
    equal = all(np.array_equal(a, b) for a, b in zip(*logits.values(), strict=True))
    print(f"  logits equal bit for bit: {equal}")


if __name__ == "__main__":
    main()
