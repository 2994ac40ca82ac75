"""A backdoor canary: a pixel trigger that relabels inputs to a target class.

Planted in the data of the client that will be forgotten, it makes forgetting
measurable: a model that learned from that client classifies triggered inputs as the
target class (high attack success rate); a model that never saw it does not.
"""

from __future__ import annotations

import numpy as np

from fedunlearn.data.datasets import ArrayDataset

IMAGE_CORNERS = ("bottom-right", "top-left", "top-right", "bottom-left")
FLAT_CORNERS = ("bottom-right", "top-left")


def apply_trigger(
    x: np.ndarray, size: int, value: float = 1.0, corner: str = "bottom-right"
) -> np.ndarray:
    """Copy of ``x`` with a ``size`` x ``size`` square of ``value`` in a corner of every
    image (``"bottom-right"``, the canary's; ``"top-left"``, ``"top-right"``,
    ``"bottom-left"``), or on the last (first) ``size`` features of flat rows (only
    ``"bottom-right"`` and ``"top-left"`` there)."""
    if corner not in IMAGE_CORNERS:
        raise ValueError(f"corner must be one of {IMAGE_CORNERS}, got {corner!r}")
    out = np.array(x, copy=True)
    if out.ndim == 4:  # (N, C, H, W)
        if size > min(out.shape[2], out.shape[3]):
            raise ValueError(f"trigger size {size} is larger than the images {out.shape[2:]}")
        rows = slice(-size, None) if corner.startswith("bottom") else slice(0, size)
        cols = slice(-size, None) if corner.endswith("right") else slice(0, size)
        out[:, :, rows, cols] = value
    elif out.ndim == 2:  # (N, D)
        if corner not in FLAT_CORNERS:
            raise ValueError(f"flat rows have only the corners {FLAT_CORNERS}, got {corner!r}")
        if corner == "bottom-right":
            out[:, -size:] = value
        else:
            out[:, :size] = value
    else:
        raise ValueError(f"cannot place a trigger on inputs shaped {out.shape}")
    return out


def plant_canary(
    data: ArrayDataset, fraction: float, target_class: int, size: int, seed: int
) -> tuple[ArrayDataset, np.ndarray]:
    """Poison a ``fraction`` of ``data``: add the trigger and relabel to ``target_class``.

    Returns the poisoned copy and the record ids of the poisoned examples. At least
    one example is poisoned when ``fraction > 0``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"canary fraction must be in [0, 1], got {fraction}")
    n = len(data)
    count = 0 if fraction == 0 else max(1, round(fraction * n))
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))
    x, y = np.array(data.x, copy=True), np.array(data.y, copy=True)
    if count:
        x[chosen] = apply_trigger(x[chosen], size)
        y[chosen] = target_class
    return ArrayDataset(x, y, data.ids.copy()), data.ids[chosen].copy()


def triggered_test_set(
    test: ArrayDataset, target_class: int, size: int, corner: str = "bottom-right"
) -> ArrayDataset:
    """Test inputs whose true class is not the target, with the trigger added.

    Their labels stay the true labels; the attack succeeds on an input when the model
    predicts ``target_class`` for it.
    """
    keep = np.flatnonzero(test.y != target_class)
    subset = test.subset(keep)
    return ArrayDataset(apply_trigger(subset.x, size, corner=corner), subset.y, subset.ids)


def memorization_canaries(
    count: int, input_shape: tuple[int, ...], num_classes: int, first_id: int, seed: int
) -> ArrayDataset:
    """``count`` records of uniform noise with random labels: nothing to generalise from,
    so a model fits them only by memorising each one (Carlini et al.'s canaries, as
    used to audit privacy). Record ids start at ``first_id``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(count, *input_shape)).astype(np.float32)
    y = rng.integers(0, num_classes, size=count).astype(np.int64)
    return ArrayDataset(x, y, np.arange(first_id, first_id + count, dtype=np.int64))
