"""How many CPU threads torch uses: a process's share of the machine, never all of it.

By default torch starts one thread per core in every process. Several processes that
each do so (Ray actors, the server, a second job) slow each other down by orders of
magnitude on a small machine (6 SGD steps took 5.7 s with 2 threads on a loaded 2-core
machine, 0.085 s with 1). So every simulated client uses ``simulation.client_cpus``
threads, and the server process as many as it may use.
"""

from __future__ import annotations

import os

import torch


def pin_threads(cpus: float) -> int:
    """Let torch use ``int(cpus)`` threads (at least 1) in this process; the count."""
    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity; every core where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def clients_at_once(client_cpus: float) -> int:
    """How many clients of ``client_cpus`` CPUs each fit on this machine at once (at
    least 1), as Ray counts its actors."""
    return max(1, int(available_cpus() / client_cpus))
