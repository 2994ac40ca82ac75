"""Split a training set over simulated clients with flwr-datasets partitioners.

The partitioners run on a local ``datasets.Dataset`` built from the labels (and, for
natural partitions, each example's value of the partition column), so no hub is
contacted. Each scheme returns, per client, the positions of its examples.
"""

from __future__ import annotations

import numpy as np

from fedunlearn.config.dataset import PARTITION_SCHEMES


class PartitionError(ValueError):
    """The requested partition cannot be made from this data."""


def partition_indices(
    labels: np.ndarray,
    num_clients: int,
    scheme: str = "iid",
    *,
    alpha: float = 0.5,
    classes_per_client: int = 2,
    min_size: int = 10,
    seed: int = 0,
    groups: np.ndarray | None = None,
    partition_by: str = "group",
) -> list[np.ndarray]:
    """Positions of each client's examples, sorted, disjoint and covering the data.

    Parameters
    ----------
    labels : np.ndarray
        Integer class labels of the training set.
    num_clients : int
        Number of partitions.
    scheme : {"iid", "dirichlet", "pathological", "natural"}
        ``iid``: a seeded shuffle cut into near-equal parts
        (``flwr_datasets.partitioner.IidPartitioner``); ``dirichlet``: per-class
        proportions drawn from Dir(``alpha``) (``DirichletPartitioner``), smaller
        ``alpha`` is more skewed; ``pathological``: each client holds
        ``classes_per_client`` classes (``PathologicalPartitioner``); ``natural``: one
        client per distinct value of ``groups``, in sorted order
        (``NaturalIdPartitioner``).
    alpha : float
        Dirichlet concentration, > 0.
    classes_per_client : int
        Classes per client for the pathological scheme.
    min_size : int
        Dirichlet only: redraw until every client has at least this many examples.
    seed : int
        Seed of every random choice.
    groups : np.ndarray, optional
        Natural only: each example's value of the partition column.
    partition_by : str
        Natural only: the name of that column (``data.partition_by``), for messages.
    """
    import datasets
    from flwr_datasets.partitioner import (
        DirichletPartitioner,
        IidPartitioner,
        PathologicalPartitioner,
    )

    labels = np.asarray(labels)
    if scheme == "natural":
        return _natural(groups, len(labels), num_clients, partition_by)
    if num_clients < 1 or num_clients > len(labels):
        raise PartitionError(f"cannot split {len(labels)} examples over {num_clients} clients")
    # IidPartitioner cuts contiguous blocks, and datasets often arrive sorted by
    # label, so every scheme sees a seeded permutation of the rows.
    order = np.random.default_rng(seed).permutation(len(labels))
    table = datasets.Dataset.from_dict({"position": order, "label": labels[order].tolist()})
    if scheme == "iid":
        partitioner = IidPartitioner(num_partitions=num_clients)
    elif scheme == "dirichlet":
        partitioner = DirichletPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            alpha=alpha,
            min_partition_size=min_size,
            self_balancing=False,
            seed=seed,
        )
    elif scheme == "pathological":
        partitioner = PathologicalPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            num_classes_per_partition=classes_per_client,
            class_assignment_mode="first-deterministic",
            seed=seed,
        )
    else:
        raise PartitionError(f"unknown partition scheme {scheme!r}; one of {PARTITION_SCHEMES}")
    partitioner.dataset = table
    try:
        parts = [
            np.sort(np.asarray(partitioner.load_partition(i)["position"], dtype=np.int64))
            for i in range(num_clients)
        ]
    except ValueError as err:
        raise PartitionError(
            f"{scheme} partitioning of {len(labels)} examples over {num_clients} clients "
            f"failed: {err}. Try fewer clients, a larger alpha or a smaller min size."
        ) from err
    empty = [i for i, p in enumerate(parts) if len(p) == 0]
    if empty:
        raise PartitionError(
            f"{scheme} partitioning left clients {empty} without data; use fewer clients "
            "or another scheme"
        )
    return parts


def _natural(
    groups: np.ndarray | None, count: int, num_clients: int, partition_by: str
) -> list[np.ndarray]:
    """One part per distinct value of ``groups``, sorted (``NaturalIdPartitioner``)."""
    import datasets
    from flwr_datasets.partitioner import NaturalIdPartitioner

    from fedunlearn.data.hub import quiet_datasets

    if groups is None or len(groups) != count:
        raise PartitionError(
            "natural partitioning needs each example's value of the partition column "
            "(data.partition_by)"
        )
    table = datasets.Dataset.from_dict(
        {"position": np.arange(count), "natural_id": np.asarray(groups).tolist()}
    )
    partitioner = NaturalIdPartitioner(partition_by="natural_id")
    partitioner.dataset = table
    with quiet_datasets():
        found = partitioner.num_partitions
        parts = [
            np.sort(np.asarray(partitioner.load_partition(i)["position"], dtype=np.int64))
            for i in range(found)
        ]
    if found != num_clients:
        raise PartitionError(
            f"data.partition_by = {partition_by!r} has {found} distinct values in the "
            f"training pool, one client each, but federation.num_clients = {num_clients}; "
            f"set federation.num_clients = {found}"
        )
    return parts
