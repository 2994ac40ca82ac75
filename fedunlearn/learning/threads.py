"""How many CPU threads torch uses: a process's share of the machine, never all of it.

By default torch starts one thread per core in every process. Several processes that
each do so (Ray actors, the server, a second job) slow each other down by orders of
magnitude on a small machine (6 SGD steps took 5.7 s with 2 threads on a loaded 2-core
machine, 0.085 s with 1). So every simulated client uses ``simulation.client_cpus``
threads, and the server process as many as it may use.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def pin_threads(cpus: float) -> int:
    """Let torch use ``int(cpus)`` threads (at least 1) in this process; the count."""
    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity (every core where that is unknown),
    capped by a container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``
    under ``cgroup``), whole CPUs, at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cpu_quota(cgroup)
    return max(1, min(cpus, int(quota))) if quota is not None else max(1, cpus)


def _cpu_quota(cgroup: Path) -> float | None:
    """CPUs a container may use per period (None: no quota, or none found)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def clients_at_once(client_cpus: float) -> int:
    """How many clients of ``client_cpus`` CPUs each fit in :func:`available_cpus` at
    once (at least 1), as Ray counts its actors."""
    return max(1, int(available_cpus() / client_cpus))
