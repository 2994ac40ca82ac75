"""Partitioning over clients with flwr-datasets partitioners."""

from __future__ import annotations

import numpy as np
import pytest

from fedunlearn.data.partition import PartitionError, partition_indices

LABELS = np.repeat(np.arange(10), 60)  # sorted by label, as many datasets arrive


def assert_disjoint_cover(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert len(np.unique(joined)) == n


def test_iid_gives_near_equal_disjoint_parts_with_all_labels_even_if_data_is_sorted() -> None:
    parts = partition_indices(LABELS, 6, "iid", seed=1)
    assert_disjoint_cover(parts, len(LABELS))
    assert {len(p) for p in parts} == {100}
    for p in parts:
        assert len(np.unique(LABELS[p])) >= 8


def test_same_seed_same_partition_other_seed_other_partition() -> None:
    a = partition_indices(LABELS, 5, "dirichlet", alpha=0.5, seed=3)
    b = partition_indices(LABELS, 5, "dirichlet", alpha=0.5, seed=3)
    c = partition_indices(LABELS, 5, "dirichlet", alpha=0.5, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_dirichlet_with_small_alpha_is_more_skewed_than_with_large_alpha() -> None:
    def skew(alpha: float) -> float:
        parts = partition_indices(LABELS, 5, "dirichlet", alpha=alpha, min_size=5, seed=0)
        assert_disjoint_cover(parts, len(LABELS))
        # Mean over clients of the share of its most frequent label.
        return float(np.mean([np.bincount(LABELS[p]).max() / len(p) for p in parts]))

    assert skew(0.1) > skew(100.0) + 0.2


def test_pathological_gives_each_client_its_number_of_classes() -> None:
    parts = partition_indices(LABELS, 5, "pathological", classes_per_client=2, seed=0)
    for p in parts:
        assert len(np.unique(LABELS[p])) <= 2


def test_impossible_partitions_are_refused_with_a_reason() -> None:
    with pytest.raises(PartitionError, match="cannot split"):
        partition_indices(LABELS[:3], 5)
    with pytest.raises(PartitionError, match="unknown partition scheme"):
        partition_indices(LABELS, 5, "random")
