"""Small models for federated experiments.

None of them uses BatchNorm, so Opacus can wrap every one of them for DP-SGD without
changes (DESIGN.md section 6). Select one by name in the experiment config
(``[model] name = "cnn"``) or by dotted path to your own factory
(``name = "my_lab.models:make_resnet"``), called as
``factory(input_shape=..., num_classes=..., hidden=...)``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import torch
from torch import nn

from fedunlearn.plugins import load_object

ModelFactory = Callable[..., nn.Module]


def logistic_regression(
    input_shape: tuple[int, ...], num_classes: int, hidden: int = 0
) -> nn.Module:
    """Multinomial logistic regression on the flattened input (``hidden`` unused)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 128) -> nn.Module:
    """Two hidden layers of ``hidden`` ReLU units."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


class ChannelsLastMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that, in eval mode, pools in channels-last memory and hands its
    output back in the usual (contiguous) layout.

    The values are the same, bit for bit: a maximum does not depend on the memory
    layout, and the next convolution still gets the contiguous input it always had.
    Predicting is faster: torch's CPU kernel pools a channels-last tensor about 10x
    faster than a contiguous one, and the server predicts after every round (1,900
    MNIST images in 0.15 s against 0.21 s, one thread, measured by
    ``benchmarks/server_evaluation.py``). Training keeps the contiguous kernel: with
    the backward pass, the layout copies cost more than they save (10% slower, two
    processes training side by side on 2 cores). So does ``return_indices=True``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.return_indices or x.dim() != 4:  # needs a batch of images
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks (16 and 32 channels, max-pooled) and two dense layers.

    Works for any image size of at least 4x4 (8x8 digits, 28x28 MNIST, 32x32 CIFAR).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"the cnn model needs images shaped (channels, height, width), got "
                f"input shape {input_shape}; use model.name = 'mlp' for flat features"
            )
        channels, height, width = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            ChannelsLastMaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            ChannelsLastMaxPool2d(2),
        )
        flat = 32 * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def cnn(input_shape: tuple[int, ...], num_classes: int, hidden: int = 64) -> nn.Module:
    """A :class:`SmallCNN`."""
    return SmallCNN(input_shape, num_classes, hidden)


MODELS: dict[str, ModelFactory] = {"logreg": logistic_regression, "mlp": mlp, "cnn": cnn}
"""Built-in models by short name."""

_SEEDING = threading.RLock()
"""Held while a model draws its initial weights from torch's global generator
(reentrant: a factory may build a model of its own)."""


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, hidden: int, seed: int
) -> nn.Module:
    """Build a model with weights drawn from a seeded generator.

    The same ``seed`` gives the same initial weights, which is what makes retraining
    from scratch an exact reference for the unlearned model.
    """
    factory = MODELS[name] if name in MODELS else load_object(name, what="model")
    # fork_rng saves, reseeds and restores torch's one global generator: two threads
    # doing it at once (a client's warm-up and its first message, or a handler the
    # client deadline abandoned) could each draw from the other's seed.
    with _SEEDING, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model factory {name!r} returned {type(model)}, not a torch Module")
    return model
