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


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """The values of ``nn.MaxPool2d(2)`` on a batch of images, faster on CPU.

    Two elementwise maxima of strided views (rows, then columns) instead of torch's
    pooling kernel, which is slow for contiguous tensors. The values are the same: a
    maximum is exact, odd edges are dropped (floor mode) and a NaN gives NaN, as there
    (the sign of a zero and a NaN's payload bits may differ). For prediction only: at
    ties its gradient is split, where ``MaxPool2d`` gives it to one input.
    """
    height, width = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :height, :width]
    rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks (16 and 32 channels, max-pooled) and two dense layers.

    Works for any image size of at least 4x4 (8x8 digits, 28x28 MNIST, 32x32 CIFAR).

    Predicting without autograd (``torch.no_grad()``, as the server does after every
    round) takes a faster path with the same logits (bit for bit on the default data;
    ``tests/test_models.py``): each block pools with :func:`max_pool_2x2`, then applies
    the ReLU to a quarter of the values (ReLU is monotonic, so it commutes with a
    maximum; only the sign of an exact zero can differ, which no later sum sees). 1,900
    MNIST images in 0.070 s against 0.167 s for the layers as written and 0.113 s for
    the channels-last pooling used before, one thread
    (``python benchmarks/server_evaluation.py``). Training, and anything that needs
    gradients, runs the layers as written.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"the cnn model needs images shaped (channels, height, width), got "
                f"input shape {input_shape}; use model.name = 'mlp' for flat features"
            )
        channels, height, width = input_shape
        if height < 4 or width < 4:
            raise ValueError(
                f"the cnn model needs images of at least 4x4 (two 2x2 poolings), got "
                f"{height}x{width}; use model.name = 'mlp' for smaller inputs"
            )
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = 32 * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dim() != 4:  # gradients, or one unbatched image
            return self.classifier(self.features(x))
        for conv in (self.features[0], self.features[3]):
            x = torch.relu_(max_pool_2x2(conv(x)))
        return self.classifier(x)


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
