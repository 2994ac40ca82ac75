"""Columns of a Hugging Face ``datasets.Dataset`` as the arrays a run trains on.

* features: one image column becomes ``(N, C, H, W)`` float32 in [0, 1] (grayscale 1
  channel, colour 3); numeric columns are stacked to ``(N, D)`` float32 as they are; a
  single column of equal-shaped arrays keeps its shape (``(H, W)`` arrays become one
  channel images, not rescaled). With ``data.features = []`` the image column (named
  ``image`` or ``img``, or the only image-typed one) is taken, else every numeric
  column but the label and ``data.partition_by``.
* labels: an integer or ``ClassLabel`` column, non-negative.
* the natural client of each example: the ``data.partition_by`` column.

Every problem is a :class:`~fedunlearn.data.datasets.DataError` naming the data and
what is wrong with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fedunlearn.config.dataset import DataConfig
from fedunlearn.data.datasets import DataError, DatasetInfo, LoadedData

if TYPE_CHECKING:
    import datasets

IMAGE_NAMES = ("image", "img")
"""Image columns taken first when ``data.features`` is empty."""

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def table_arrays(table: datasets.Dataset, config: DataConfig, where: str) -> LoadedData:
    """``table`` as inputs, labels and (for natural partitions) each example's client.

    Parameters
    ----------
    table : datasets.Dataset
        The rows of one split; an example's record id is its row number.
    config : DataConfig
        ``label``, ``features``, ``partition`` and ``partition_by``.
    where : str
        How to name the data in messages (the file and split).
    """
    if table.num_rows == 0:
        raise DataError(f"{where} is empty: it has no rows")
    natural = config.partition == "natural"
    _require(table, config.label, "data.label", where)
    if natural:
        _require(table, config.partition_by, "data.partition_by", where)
    features = list(config.features) or _automatic_features(table, config, where)
    for name in features:
        _require(table, name, "data.features", where)
    y, num_classes = _labels(table, config.label, where)
    x = _inputs(table, features, where)
    groups = _groups(table, config.partition_by, where) if natural else None
    info = DatasetInfo(config.dataset, tuple(x.shape[1:]), num_classes)
    return LoadedData(x, y, info, groups)


def _require(table: datasets.Dataset, column: str, key: str, where: str) -> None:
    if column not in table.column_names:
        raise DataError(
            f"{where} has no column {column!r} ({key}); its columns: "
            f"{', '.join(table.column_names)}"
        )


def _kind(feature: Any) -> str:
    """``"image"``, ``"class"``, ``"number"``, ``"array"`` or what else a column holds."""
    import datasets
    import pyarrow as pa

    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.ClassLabel):
        return "class"
    if isinstance(feature, datasets.Value):
        kind = feature.pa_type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            return "number"
        return _describe(feature)
    if isinstance(
        feature,
        datasets.List | datasets.LargeList | datasets.Array2D | datasets.Array3D,
    ):
        return "array"
    return type(feature).__name__


def _automatic_features(table: datasets.Dataset, config: DataConfig, where: str) -> list[str]:
    kinds = {name: _kind(feature) for name, feature in table.features.items()}
    images = [name for name, kind in kinds.items() if kind == "image"]
    for name in IMAGE_NAMES:
        if name in images:
            return [name]
    if len(images) == 1:
        return images
    if len(images) > 1:
        raise DataError(
            f"{where} has several image columns ({', '.join(images)}); set data.features "
            "to the one to use"
        )
    skip = {config.label, config.partition_by}
    numbers = [name for name, kind in kinds.items() if kind == "number" and name not in skip]
    if not numbers:
        raise DataError(
            f"{where} has no image column and no numeric column besides the label to use "
            f"as features; its columns: "
            + ", ".join(f"{name} ({kind})" for name, kind in kinds.items())
            + ". Set data.features"
        )
    return numbers


def _labels(table: datasets.Dataset, column: str, where: str) -> tuple[np.ndarray, int]:
    """The labels as int64 and the number of classes."""
    feature = table.features[column]
    kind = _kind(feature)
    values = table.with_format("arrow")[column]
    if values.null_count:
        raise DataError(
            f"{where}: the label column {column!r} has no value in {values.null_count} "
            f"of {len(values)} rows"
        )
    if kind == "number" and not _is_integer(feature):
        raise DataError(
            f"{where}: the label column {column!r} holds non-integer labels "
            f"({_describe(feature)}); labels must be integers or a ClassLabel. Cast them "
            f"first, e.g. dataset.cast_column({column!r}, datasets.Value('int64'))"
        )
    if kind not in ("class", "number"):
        raise DataError(
            f"{where}: the label column {column!r} holds non-numeric labels "
            f"({_describe(feature)}); labels must be integers or a ClassLabel. Encode "
            f"them first, e.g. dataset.class_encode_column({column!r}) before "
            "save_to_disk"
        )
    y = np.asarray(values.to_numpy(), dtype=np.int64)
    negative = int((y < 0).sum())
    if negative:
        raise DataError(
            f"{where}: {negative} rows have a negative label in {column!r} (e.g. "
            f"{int(y[y < 0][0])}); labels must be class numbers >= 0 (a ClassLabel marks "
            "a missing label with -1)"
        )
    names = len(feature.names) if kind == "class" else 0
    return y, max(int(y.max()) + 1, names)


def _is_integer(feature: Any) -> bool:
    import datasets
    import pyarrow as pa

    if isinstance(feature, datasets.ClassLabel):
        return True
    return pa.types.is_integer(feature.pa_type)


def _describe(feature: Any) -> str:
    """What a column holds, in a word: ``text``, ``float64``, ``List``..."""
    import datasets
    import pyarrow as pa

    if isinstance(feature, datasets.Value):
        kind = feature.pa_type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        return "text" if text else str(feature.dtype)
    return type(feature).__name__


def _inputs(table: datasets.Dataset, columns: list[str], where: str) -> np.ndarray:
    """The feature columns as float32 ``(N, C, H, W)`` images or ``(N, D)`` rows."""
    kinds = {name: _kind(table.features[name]) for name in columns}
    images = [name for name, kind in kinds.items() if kind == "image"]
    if images and len(columns) > 1:
        raise DataError(
            f"{where}: the image column {images[0]!r} must be the only feature; "
            f"data.features = {columns}"
        )
    if images:
        return _images(table, images[0], where)
    other = {name: kind for name, kind in kinds.items() if kind not in ("number", "class", "array")}
    if other:
        listed = ", ".join(f"{name!r} ({kind})" for name, kind in other.items())
        raise DataError(
            f"{where}: feature columns must hold numbers, arrays of numbers or images; "
            f"{listed} do not"
        )
    blocks = [_column(table, name, where) for name in columns]
    if len(blocks) == 1 and blocks[0].ndim > 1:
        x = blocks[0]
        if x.ndim == 3:  # (N, H, W) -> one channel images
            x = x[:, None, :, :]
        if x.ndim not in (2, 4):
            raise DataError(
                f"{where}: the feature column {columns[0]!r} holds arrays shaped "
                f"{x.shape[1:]}; use vectors, (H, W) or (C, H, W) arrays"
            )
    else:
        x = np.concatenate([b.reshape(len(b), -1) for b in blocks], axis=1)
    _check_finite(x, columns, where)
    return x


def _column(table: datasets.Dataset, name: str, where: str) -> np.ndarray:
    """One numeric or array column as float32, NaN where a number is missing."""
    values = table.with_format("arrow")[name]
    if _kind(table.features[name]) != "array":
        return np.asarray(values.to_numpy(), dtype=np.float32)
    if values.null_count:
        raise DataError(
            f"{where}: the feature column {name!r} has no value in {values.null_count} "
            f"of {len(values)} rows"
        )
    try:
        array = table.with_format("numpy")[name][:]
    except ValueError:
        array = np.asarray(values.to_pylist(), dtype=object)
    if array.dtype == object:
        shapes = sorted({np.shape(v) for v in array}, key=str)
        if len(shapes) > 1:
            raise DataError(
                f"{where}: features of mixed shapes: the column {name!r} holds arrays "
                f"shaped {', '.join(str(s) for s in shapes[:4])}"
            )
        array = np.stack([np.asarray(v) for v in array])
    return np.asarray(array, dtype=np.float32)


def _images(table: datasets.Dataset, name: str, where: str) -> np.ndarray:
    """PIL images as float32 ``(N, C, H, W)`` in [0, 1]."""
    images = list(table[name])
    missing = sum(image is None for image in images)
    if missing:
        raise DataError(
            f"{where}: the image column {name!r} has no image in {missing} of {len(images)} rows"
        )
    sizes = sorted({image.size for image in images})
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for w, h in sizes[:4])
        raise DataError(
            f"{where}: features of mixed shapes: the images in {name!r} have sizes "
            f"{listed} (width x height); resize them to one size"
        )
    gray = all(image.mode in _GRAY_MODES for image in images)
    x = np.stack([_pixels(image, gray) for image in images])
    if any(image.mode in ("I", "F") for image in images):  # 32-bit pixels: scale by the max
        _check_finite(x, [name], where)
        high = float(x.max())
        x = x / high if high > 1.0 else x
    return x


def _pixels(image: Any, gray: bool) -> np.ndarray:
    """One image as float32 ``(1, H, W)`` (gray) or ``(3, H, W)`` (colour) pixels,
    8- and 16-bit ones in [0, 1]."""
    if not gray:
        return np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32)[None] / 65535.0
    if image.mode in ("I", "F"):
        return np.asarray(image, dtype=np.float32)[None]
    return np.asarray(image.convert("L"), dtype=np.float32)[None] / 255.0


def _check_finite(x: np.ndarray, columns: list[str], where: str) -> None:
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"{where}: {int(bad.sum())} of {len(x)} rows hold NaN, missing or infinite "
            f"values in the features ({', '.join(columns)}); drop or fill those rows"
        )


def _groups(table: datasets.Dataset, column: str, where: str) -> np.ndarray:
    """The values of the partition column, one per row."""
    feature = table.features[column]
    kind = _kind(feature)
    if kind in ("image", "array"):
        raise DataError(
            f"{where}: cannot partition by {column!r}, it holds {kind}s; data.partition_by "
            "must name a column of ids (strings or integers)"
        )
    values = table.with_format("arrow")[column]
    if values.null_count:
        raise DataError(
            f"{where}: the partition column {column!r} has no value in "
            f"{values.null_count} of {len(values)} rows"
        )
    groups = np.asarray(values.to_pylist())
    if groups.dtype.kind == "f" and not np.isfinite(groups).all():
        raise DataError(f"{where}: the partition column {column!r} holds NaN values")
    return groups
