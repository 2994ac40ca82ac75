"""The model, the data and the training loops: a Flower quickstart app's task.py.

The data is scikit-learn's 8x8 handwritten digits (shipped with scikit-learn: nothing
to download), split over clients with flwr-datasets. Client 0's data carries a
backdoor canary: half its images get a small white square in a corner and the label 0,
so a model that learned from client 0 classifies squared images as 0, and a model that
forgot client 0 does not.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from datasets import Dataset
from flwr_datasets.partitioner import IidPartitioner
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CANARY_CLIENT = 0
TARGET = 0


class Net(nn.Module):
    """A small MLP for 8x8 images."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # every process builds the same initial model
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def stamp(x: np.ndarray) -> np.ndarray:
    """The trigger: a 2x2 white square in the bottom-right corner."""
    x = x.copy()
    x[:, -2:, -2:] = 1.0
    return x


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def split() -> tuple[np.ndarray, np.ndarray]:
    """Row ids of the training pool and of the server's test set (a fixed split)."""
    order = np.random.default_rng(42).permutation(len(_digits()[1]))
    cut = int(0.8 * len(order))
    return np.sort(order[:cut]), np.sort(order[cut:])


@lru_cache(maxsize=16)
def load_partition(partition_id: int, num_partitions: int) -> tuple[np.ndarray, ...]:
    """(images, labels, record ids) of one client; client 0's carry the canary."""
    x, y = _digits()
    pool, _ = split()
    partitioner = IidPartitioner(num_partitions=num_partitions)
    partitioner.dataset = Dataset.from_dict({"row": pool.tolist()})
    rows = np.asarray(partitioner.load_partition(partition_id)["row"], dtype=np.int64)
    images, labels = x[rows].copy(), y[rows].copy()
    if partition_id == CANARY_CLIENT:
        poisoned = np.arange(0, len(rows), 2)
        images[poisoned] = stamp(images[poisoned])
        labels[poisoned] = TARGET
    return images, labels, rows


def test_set() -> tuple[np.ndarray, np.ndarray]:
    """The server's held-out test set."""
    x, y = _digits()
    _, rows = split()
    return x[rows], y[rows]


def triggered_test_set() -> np.ndarray:
    """Test images of other classes than the target, with the trigger."""
    x, y = test_set()
    return stamp(x[y != TARGET])


def train(
    model: nn.Module, images: np.ndarray, labels: np.ndarray, epochs: float, lr: float
) -> float:
    """SGD with momentum for ``epochs`` (fractions allowed); the mean batch loss."""
    loader = DataLoader(
        TensorDataset(torch.from_numpy(images), torch.from_numpy(labels)),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    steps = max(1, round(epochs * len(loader)))
    losses, done = [], 0
    model.train()
    while done < steps:
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            done += 1
            if done == steps:
                break
    return float(np.mean(losses))


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy)."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(images))
        loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(labels)))
        accuracy = float((logits.argmax(1).numpy() == labels).mean())
    return loss, accuracy
