"""Model weights as named NumPy arrays, and the arithmetic of updates.

Everything the server keeps or computes (global models, client updates, calibrated
updates) is an :data:`Arrays`: an ordered mapping from a parameter name (as in a
PyTorch ``state_dict``) to a NumPy array. Keeping one plain type makes the unlearning
math testable on small hand-written arrays, independent of PyTorch and Flower.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

Arrays = dict[str, np.ndarray]
"""Named arrays: a model's weights or an update to them."""


def model_to_arrays(model: torch.nn.Module) -> Arrays:
    """Copy a model's ``state_dict`` (parameters and buffers) into NumPy arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_arrays(model: torch.nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Load named arrays into a model; keys must match its ``state_dict`` exactly."""
    state = model.state_dict()
    missing = set(state) - set(arrays)
    unexpected = set(arrays) - set(state)
    if missing or unexpected:
        raise ValueError(
            f"arrays do not fit the model: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )
    model.load_state_dict({k: torch.as_tensor(np.asarray(arrays[k])) for k in state}, strict=True)


def trainable_keys(model: torch.nn.Module) -> list[str]:
    """Names of the trainable parameters, in ``state_dict`` order.

    Buffers such as BatchNorm running statistics are left out: they are not learned
    by gradient descent, so they must not enter update norms (DESIGN.md section 4).
    """
    params = {name for name, p in model.named_parameters() if p.requires_grad}
    return [k for k in model.state_dict() if k in params]


def to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Wrap named arrays in a Flower ``ArrayRecord`` (keys and order kept)."""
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def from_record(record: ArrayRecord) -> Arrays:
    """Unwrap a Flower ``ArrayRecord`` into named arrays (copies, safe to mutate)."""
    return {k: np.array(v.numpy(), copy=True) for k, v in record.items()}


def copy_arrays(arrays: Mapping[str, np.ndarray]) -> Arrays:
    """A deep copy of named arrays."""
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _check_same_keys(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> None:
    if list(a) != list(b):
        raise ValueError(f"arrays have different keys: {list(a)[:5]}... vs {list(b)[:5]}...")


def subtract(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> Arrays:
    """``a - b`` key by key: the update that takes weights ``b`` to weights ``a``."""
    _check_same_keys(a, b)
    return {k: np.asarray(a[k]) - np.asarray(b[k]) for k in a}


def add(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> Arrays:
    """``a + b`` key by key."""
    _check_same_keys(a, b)
    return {k: np.asarray(a[k]) + np.asarray(b[k]) for k in a}


def scale(a: Mapping[str, np.ndarray], factor: float) -> Arrays:
    """``factor * a`` key by key, keeping each array's dtype."""
    return {k: (np.asarray(v) * factor).astype(np.asarray(v).dtype) for k, v in a.items()}


def weighted_average(items: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float]) -> Arrays:
    """Average named arrays with the given (unnormalised, positive) weights."""
    if not items:
        raise ValueError("cannot average an empty list of arrays")
    if len(items) != len(weights):
        raise ValueError("items and weights must have the same length")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"weights must sum to a positive number, got {total}")
    first = items[0]
    for other in items[1:]:
        _check_same_keys(first, other)
    out: Arrays = {}
    for k in first:
        acc = np.zeros_like(np.asarray(first[k]), dtype=np.float64)
        for item, w in zip(items, weights, strict=True):
            acc += np.asarray(item[k], dtype=np.float64) * (w / total)
        out[k] = acc.astype(np.asarray(first[k]).dtype)
    return out


def l2_norm(arrays: Mapping[str, np.ndarray], keys: Iterable[str] | None = None) -> float:
    """Euclidean norm of the concatenation of the selected arrays (all by default)."""
    selected = list(arrays) if keys is None else list(keys)
    total = 0.0
    for k in selected:
        v = np.asarray(arrays[k], dtype=np.float64)
        total += float(np.dot(v.ravel(), v.ravel()))
    return float(np.sqrt(total))


def nbytes(arrays: Mapping[str, np.ndarray]) -> int:
    """Bytes held by the arrays' data."""
    return int(sum(np.asarray(v).nbytes for v in arrays.values()))
