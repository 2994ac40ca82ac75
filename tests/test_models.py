"""The built-in models: SmallCNN's fast prediction computes exactly its layers as written."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from torch import nn

from fedunlearn.learning.models import build_model, max_pool_2x2


class AsWritten(nn.Module):
    """A model's layers run as written (``features`` then ``classifier``), whatever its
    own ``forward`` does: the reference for SmallCNN's prediction path."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.classifier(self.model.features(x))


def train_a_few_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for start in range(0, len(x), 16):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[start : start + 16]), y[start : start + 16]).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (1, 7, 9)])
def test_small_cnn_trains_and_predicts_bit_for_bit_as_its_layers_run_as_written(shape) -> None:
    fast = build_model("cnn", shape, 10, 32, seed=3)
    written = AsWritten(copy.deepcopy(fast))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, *shape, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)

    trained_fast, trained_written = train_a_few_steps(fast, x, y), train_a_few_steps(written, x, y)

    for a, b in zip(trained_fast, trained_written, strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(fast.eval()(x), written.eval()(x))


def test_small_cnn_keeps_the_state_dict_keys_saved_models_have() -> None:
    keys = set(build_model("cnn", (1, 28, 28), 10, 64, seed=0).state_dict())
    assert keys == {
        f"{block}.{i}.{p}"
        for block, i in (("features", 0), ("features", 3), ("classifier", 1), ("classifier", 3))
        for p in ("weight", "bias")
    }


@pytest.mark.parametrize("size", [(6, 6), (7, 9), (2, 3)])
def test_max_pool_2x2_equals_torch_max_pooling_with_odd_edges_nan_and_infinity(size) -> None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, 0], x[1, 2, -1, 0], x[0, 1, 1, 1] = float("nan"), float("inf"), float("-inf")
    # equal_nan: NaN == NaN here, and NaN positions must match
    assert torch.equal(max_pool_2x2(x).isnan(), nn.functional.max_pool2d(x, 2).isnan())
    assert torch.allclose(max_pool_2x2(x), nn.functional.max_pool2d(x, 2), 0, 0, equal_nan=True)


def test_small_cnn_with_gradients_in_eval_mode_backpropagates_as_its_layers_as_written() -> None:
    # All-zero images make every pooling window a tie: torch's MaxPool2d sends the
    # gradient to one input, elementwise maxima would split it.
    fast = build_model("cnn", (1, 8, 8), 10, 32, seed=3).eval()
    written = AsWritten(copy.deepcopy(fast)).eval()
    grads = []
    for model in (fast, written):
        x = torch.zeros(4, 1, 8, 8, requires_grad=True)
        model(x).sum().backward()
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1])


def test_a_model_factory_may_build_a_model_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from fedunlearn.learning import models

    def wrapped_mlp(input_shape, num_classes, hidden):  # builds another model inside
        return nn.Sequential(build_model("mlp", input_shape, num_classes, hidden, seed=1))

    monkeypatch.setitem(models.MODELS, "wrapped", wrapped_mlp)
    built: list[nn.Module] = []
    worker = threading.Thread(
        target=lambda: built.append(build_model("wrapped", (4,), 3, 8, seed=0)), daemon=True
    )
    worker.start()
    worker.join(timeout=30)  # a non-reentrant seeding lock would wait here forever
    assert built and isinstance(built[0], nn.Sequential)
    inner = build_model("mlp", (4,), 3, 8, seed=1)
    for a, b in zip(built[0].parameters(), inner.parameters(), strict=True):
        assert torch.equal(a, b)


def test_small_cnn_refuses_images_smaller_than_4x4_and_says_what_to_use() -> None:
    with pytest.raises(ValueError, match="at least 4x4.*model.name = 'mlp'"):
        build_model("cnn", (1, 3, 8), 10, 32, seed=0)
