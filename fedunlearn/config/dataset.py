"""``[data]``: which dataset, which of its columns, and how it is split over clients
(:class:`DataConfig`, and the datasets and partition schemes the config accepts)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import ClassVar

from fedunlearn.config.options import option

__all__ = ["DATASETS", "PARTITION_SCHEMES", "DataConfig"]

DATASETS = ("digits", "mnist5k", "npz", "disk", "csv", "parquet", "json", "imagefolder")
"""Datasets the config accepts (loaded by :mod:`fedunlearn.data.datasets`), besides
``"hf:<hub name>"``: two built-ins, a ``.npz`` file, and the kinds read with Hugging
Face ``datasets`` (a ``save_to_disk`` folder, tabular files, an image folder)."""

PARTITION_SCHEMES = ("iid", "dirichlet", "pathological", "natural")
"""How examples may be split over clients (:mod:`fedunlearn.data.partition`)."""


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which dataset, which of its columns, and how it is split over clients.

    ``dataset`` is not checked against a fixed list of choices because ``"hf:<hub
    name>"`` is open: :meth:`problems` checks it (and the keys that depend on it) when
    the experiment config is validated.
    """

    dataset: str = option(
        "mnist5k",
        "dataset: 'digits', 'mnist5k', 'npz', 'disk' (a save_to_disk folder), 'csv', "
        "'parquet', 'json', 'imagefolder' or 'hf:<hub name>' (docs/datasets.md)",
    )
    path: str = option(
        "",
        "the file, glob or folder to read (every dataset but 'digits', 'mnist5k' and 'hf:')",
    )
    split: str = option("", "split to read ('': 'train' if the data has it, else its only split)")
    label: str = option("label", "label column (integers or a ClassLabel)")
    features: list[str] = option(
        [],
        "feature columns ([]: the image column, else every numeric column but the label "
        "and data.partition_by)",
    )
    test_fraction: float = option(0.2, "share held out as the server's test set", gt=0, le=0.5)
    partition: str = option(
        "iid",
        "how examples are split over clients ('natural': one client per value of "
        "data.partition_by)",
        choices=PARTITION_SCHEMES,
    )
    partition_by: str = option("", "column naming each example's client (partition = 'natural')")
    alpha: float = option(0.5, "Dirichlet concentration (partition = 'dirichlet')", gt=0)
    classes_per_client: int = option(2, "classes per client (partition = 'pathological')", ge=1)
    min_partition_size: int = option(10, "Dirichlet: minimum examples per client", ge=1)
    server_fraction: float = option(
        0.0,
        "share of the training pool the server keeps as unlabelled data (for methods "
        "that distill on the server)",
        ge=0,
        lt=0.9,
    )

    seed: int = option(
        -1,
        "seed of the data world: split, partition, canaries (-1: the experiment's seed); "
        "training randomness always follows the experiment's seed",
        ge=-1,
    )

    WITHOUT_COLUMNS: ClassVar[tuple[str, ...]] = ("digits", "mnist5k", "npz")
    """Datasets read as arrays, without named columns (no label, features or natural
    partition to choose)."""

    @property
    def hub_name(self) -> str:
        """The Hugging Face Hub name of ``dataset = "hf:<name>"`` ('' for other kinds)."""
        return self.dataset.removeprefix("hf:") if self.dataset.startswith("hf:") else ""

    @property
    def has_columns(self) -> bool:
        """Whether the dataset is read with Hugging Face ``datasets`` (named columns)."""
        return bool(self.hub_name) or (
            self.dataset in DATASETS and self.dataset not in self.WITHOUT_COLUMNS
        )

    def problems(self) -> list[str]:
        """What is wrong with these keys together (empty when nothing is)."""
        problems: list[str] = []
        kind = self.dataset
        if not (kind in DATASETS or (kind.startswith("hf:") and self.hub_name.strip())):
            close = difflib.get_close_matches(kind, DATASETS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"data.dataset must be one of {', '.join(repr(d) for d in DATASETS)} or "
                f"'hf:<hub name>' (e.g. 'hf:ylecun/mnist'); got {kind!r}{hint}"
            )
            return problems
        what = {
            "npz": "the .npz file",
            "disk": "the folder written by save_to_disk",
            "csv": "the .csv file, glob or folder",
            "parquet": "the .parquet file, glob or folder",
            "json": "the .json/.jsonl file, glob or folder",
            "imagefolder": "the folder of images",
        }
        if kind in what and not self.path:
            problems.append(f"data.path must name {what[kind]} when data.dataset = {kind!r}")
        if self.path and kind not in what:
            problems.append(
                f"data.path = {self.path!r} is not read when data.dataset = {kind!r}: set "
                f"data.dataset to the kind of file it is ({', '.join(map(repr, what))}) or "
                "leave data.path empty"
            )
        if not self.label:
            problems.append("data.label must name the label column, got ''")
        if self.label in self.features:
            problems.append(f"data.features must not hold the label column {self.label!r}")
        if any(not f for f in self.features):
            problems.append("data.features holds an empty column name")
        if self.partition == "natural" and not self.partition_by:
            problems.append(
                "data.partition = 'natural' needs data.partition_by, the column naming "
                "each example's client"
            )
        if self.partition_by and self.partition != "natural":
            problems.append(
                f"data.partition_by = {self.partition_by!r} is read only when "
                f"data.partition = 'natural' (got {self.partition!r}); set "
                "data.partition = 'natural' or leave data.partition_by empty"
            )
        if self.partition == "natural" and not self.has_columns:
            problems.append(
                f"data.partition = 'natural' needs a dataset with columns ('disk', 'csv', "
                f"'parquet', 'json', 'imagefolder' or 'hf:<hub name>'); {kind!r} has none"
            )
        return problems
