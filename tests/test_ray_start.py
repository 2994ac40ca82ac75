"""Starting Ray early and warming client processes: a head start that changes nothing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fedunlearn.apps import client_app, ray_start
from fedunlearn.apps.client_app import warm_up_client
from fedunlearn.apps.ray_start import WARM_CONFIG_VARIABLE, start_ray, warm_up_from_environment
from fedunlearn.data import world as world_module
from fedunlearn.data.world import federated_data
from tests.conftest import small_config


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def count_world_loads(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[object]:
    loads: list[object] = []
    real_load = world_module.load_data

    def counting_load(data):
        loads.append(data)
        threading.Event().wait(delay)
        return real_load(data)

    monkeypatch.setattr(world_module, "load_data", counting_load)
    return loads


def test_warming_up_builds_the_world_once_pins_threads_and_leaves_random_state_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_threads
) -> None:
    config = small_config(tmp_path, "simulation.client_cpus=1", "data.seed=11")
    loads = count_world_loads(monkeypatch)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()

    warm_up_client(config)
    federated_data(config)  # what the first message asks for: already there

    assert torch.get_num_threads() == 1
    assert len(loads) == 1
    assert torch.equal(torch.get_rng_state(), torch_state)  # training stays reproducible
    after = np.random.get_state()
    assert np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]


def test_a_worker_warms_up_for_the_experiment_its_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = small_config(tmp_path, "data.seed=12")
    warmed: list[object] = []
    monkeypatch.setattr(client_app, "warm_up_client", warmed.append)
    monkeypatch.setenv(WARM_CONFIG_VARIABLE, json.dumps(config.to_dict()))

    assert warm_up_from_environment()
    assert warmed == [config]  # the config survives the trip through the environment


def test_a_worker_with_an_unreadable_experiment_or_none_starts_without_warming_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warmed: list[object] = []
    monkeypatch.setattr(client_app, "warm_up_client", warmed.append)
    monkeypatch.setenv(WARM_CONFIG_VARIABLE, '{"training": {"rounds": "many"}}')
    assert warm_up_from_environment() is False  # no exception: the run reports it
    monkeypatch.delenv(WARM_CONFIG_VARIABLE)
    assert warm_up_from_environment() is False
    assert warmed == []


def test_start_ray_names_the_experiment_and_the_hook_to_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    config = small_config(tmp_path, "simulation.backend=ray", "data.seed=14")
    calls: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("PYTHONPATH", "")

    start_ray(config)

    runtime_env = calls[0]["runtime_env"]
    assert runtime_env["worker_process_setup_hook"] == "fedunlearn.apps.ray_start.warm_worker"
    named = json.loads(runtime_env["env_vars"][WARM_CONFIG_VARIABLE])
    assert type(config).from_dict(named, source="test") == config


def test_two_threads_asking_for_one_world_build_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = small_config(tmp_path, "data.seed=13")
    loads = count_world_loads(monkeypatch, delay=0.2)  # the second thread arrives meanwhile
    worlds: list[object] = []
    threads = [
        threading.Thread(target=lambda: worlds.append(federated_data(config))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1 and worlds[0] is worlds[1]


def test_the_hook_returns_and_warms_up_in_a_thread_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = threading.Event()
    threads: list[str] = []

    def record() -> None:
        threads.append(threading.current_thread().name)
        ran.set()

    monkeypatch.setattr(ray_start, "warm_up_from_environment", record)
    ray_start.warm_worker()
    assert ran.wait(timeout=30)
    assert threads == ["fedunlearn-warm-up"]  # not the worker's own thread


def test_ray_settings_go_to_the_environment_and_a_users_own_value_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*ray_start.RAY_ENVIRONMENT, "RAY_DEDUP_LOGS"]:
        monkeypatch.setenv(name, "")  # recorded, so what ray_init_args sets is undone after
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAY_max_direct_call_object_size", "12345")

    ray_start.ray_init_args(small_config(tmp_path, "simulation.backend=ray"))

    prestart, direct = "RAY_prestart_worker_first_driver", "RAY_max_direct_call_object_size"
    assert os.environ[prestart] == "0"
    assert os.environ[direct] == "12345"
