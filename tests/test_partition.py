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


def test_natural_gives_one_client_per_distinct_value_in_sorted_order() -> None:
    groups = np.array(["bob", "al", "cy", "al", "bob", "al"])
    parts = partition_indices(np.zeros(6, np.int64), 3, "natural", groups=groups)
    assert [p.tolist() for p in parts] == [[1, 3, 5], [0, 4], [2]]  # al, bob, cy
    ids = np.array([7, 3, 7, 3])
    parts = partition_indices(np.zeros(4, np.int64), 2, "natural", groups=ids)
    assert [p.tolist() for p in parts] == [[1, 3], [0, 2]]


def test_natural_needs_as_many_clients_as_values_and_the_values() -> None:
    groups = np.array(["a", "b", "a"])
    with pytest.raises(PartitionError, match="'writer' has 2 distinct values") as err:
        partition_indices(np.zeros(3, np.int64), 5, "natural", groups=groups, partition_by="writer")
    assert "set federation.num_clients = 2" in str(err.value)
    with pytest.raises(PartitionError, match="needs each example's value"):
        partition_indices(np.zeros(3, np.int64), 2, "natural")
