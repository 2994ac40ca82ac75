"""The simulated world: each client's partition copied only when asked for."""

from __future__ import annotations

import numpy as np
import pytest

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import ClientPartitions, federated_data


class CountingPool(ArrayDataset):
    """A pool that counts the partitions copied out of it."""

    copies = 0

    def subset(self, index: np.ndarray) -> ArrayDataset:
        CountingPool.copies += 1
        return super().subset(index)


def pool(n: int = 12) -> CountingPool:
    CountingPool.copies = 0
    return CountingPool(np.arange(n, dtype=np.float32), np.arange(n) % 3, np.arange(100, 100 + n))


def test_partitions_copy_only_the_clients_asked_for_and_keep_only_the_recent_ones() -> None:
    parts = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5]), np.array([6, 7])]
    partitions = ClientPartitions(pool(), parts, keep=2)
    assert partitions.sizes() == [2, 3, 1, 2] and CountingPool.copies == 0
    np.testing.assert_array_equal(partitions[1].ids, [102, 103, 104])
    assert partitions[1] is partitions[1] and CountingPool.copies == 1  # kept
    partitions[2], partitions[3]  # two more: client 1 is the least recent, dropped
    assert CountingPool.copies == 3
    np.testing.assert_array_equal(partitions[1].x, [2.0, 3.0, 4.0])
    assert CountingPool.copies == 4


def test_partitions_serve_prebuilt_clients_and_refuse_unknown_ones() -> None:
    special = ArrayDataset(np.zeros(1, np.float32), np.zeros(1, np.int64), np.array([7]))
    partitions = ClientPartitions(pool(), [np.array([0]), np.array([1, 2])], {1: special})
    assert partitions[1] is special and partitions.sizes() == [1, 1]
    assert CountingPool.copies == 0
    assert [len(d) for d in partitions] == [1, 1]
    with pytest.raises(IndexError, match=r"client 2 is outside 0..1"):
        partitions[2]


def test_the_world_splits_the_pool_into_disjoint_partitions_and_plants_the_canary() -> None:
    config = ExperimentConfig().with_overrides(["data.dataset=digits"])
    world = federated_data(config)
    ids = np.concatenate([world.clients[c].ids for c in range(len(world.clients))])
    assert len(ids) == len(np.unique(ids)) == sum(world.clients.sizes())
    canary = world.clients[world.canary_client]
    assert np.isin(world.canary_ids, canary.ids).all()
    assert (canary.y[np.isin(canary.ids, world.canary_ids)] == config.canary.target_class).all()
