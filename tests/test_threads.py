"""How many CPUs a run may use: the affinity, capped by a container's quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedunlearn.learning.threads import available_cpus, clients_at_once


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({}, 4),  # no cgroup files: the affinity
        ({"cpu.max": "max 100000\n"}, 4),  # v2, no quota
        ({"cpu.max": "200000 100000\n"}, 2),  # v2, --cpus=2
        ({"cpu.max": "150000 100000\n"}, 1),  # 1.5 CPUs: one whole CPU
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU: still one
        ({"cpu.max": "800000 100000\n"}, 4),  # more quota than cores
        ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, 4),  # v1, none
        ({"cpu.max": "garbage"}, 4),
    ],
)
def test_available_cpus_are_the_affinity_capped_by_the_container_quota(
    tmp_path: Path, four_cores: None, files: dict[str, str], cpus: int
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert available_cpus(tmp_path) == cpus


def test_clients_at_once_count_client_cpus_in_the_available_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fedunlearn.learning import threads

    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    assert [clients_at_once(c) for c in (1.0, 0.5, 2.0, 3.0, 8.0)] == [4, 8, 2, 1, 1]
