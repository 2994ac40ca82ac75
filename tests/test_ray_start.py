"""Starting Ray early and warming client processes: a head start that changes nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fedunlearn.apps import ray_start
from fedunlearn.apps.ray_start import WARM_CONFIG_VARIABLE, warm_up_client, warm_worker
from fedunlearn.data import world as world_module
from fedunlearn.data.world import federated_data
from tests.conftest import small_config


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_warming_up_builds_the_world_sets_threads_and_leaves_random_state_alone(
    tmp_path: Path, restore_threads
) -> None:
    config = small_config(tmp_path, "simulation.client_cpus=1", "data.seed=11")
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()

    warm_up_client(config)

    assert torch.get_num_threads() == 1
    assert torch.equal(torch.get_rng_state(), torch_state)  # training stays reproducible
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert federated_data(config) is federated_data(config)  # built once, then cached


def test_a_worker_warms_up_in_a_thread_for_the_experiment_its_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_threads
) -> None:
    config = small_config(tmp_path, "data.seed=12")
    warmed: list[object] = []
    monkeypatch.setattr(ray_start, "warm_up_client", warmed.append)
    monkeypatch.setenv(WARM_CONFIG_VARIABLE, json.dumps(config.to_dict()))

    warm_worker()  # returns at once; the work runs in a thread
    _join_warm_up()

    assert warmed == [config]


def test_a_worker_with_an_unreadable_experiment_starts_anyway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(WARM_CONFIG_VARIABLE, '{"training": {"rounds": "many"}}')
    warm_worker()
    _join_warm_up()  # no exception escapes: the run reports a bad config itself


def test_two_threads_asking_for_one_world_build_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = small_config(tmp_path, "data.seed=13")
    loads = []
    real_load = world_module.load_data

    def slow_load(data):  # slow enough for the second thread to arrive meanwhile
        loads.append(data)
        threading.Event().wait(0.2)
        return real_load(data)

    monkeypatch.setattr(world_module, "load_data", slow_load)
    worlds: list[object] = []
    threads = [
        threading.Thread(target=lambda: worlds.append(federated_data(config))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1 and worlds[0] is worlds[1]


def _join_warm_up() -> None:
    for thread in threading.enumerate():
        if thread.name == "fedunlearn-warm-up":
            thread.join(timeout=60)
            assert not thread.is_alive()
