"""Starting Ray for a simulation: the arguments Flower's engine would use, and starting
it early, while the rest of the program is still being imported.

Flower's Ray backend starts Ray itself unless Ray is already running, and then uses
the running instance. ``ray.init`` takes about 4 s on a 2-core machine, most of it
waiting for Ray's own processes; importing torch, Flower and scikit-learn takes about
3 s. :func:`start_ray_while_importing` does the two at once (the ``fedunlearn run``
command uses it), with the same arguments as :func:`ray_init_args`, which the
simulation passes to Flower, so whoever starts Ray starts the same Ray.

This module imports nothing heavy: it must be importable before the rest.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from typing import Any

from fedunlearn.config.experiment import ExperimentConfig

__all__ = ["ray_init_args", "start_ray", "start_ray_while_importing", "warm_worker"]


def warm_worker() -> None:
    """Ray runs this in each worker process as it starts, before it is given an
    actor: the ClientApp's imports (about 3 s) then overlap the driver's preparation
    instead of delaying the first message."""
    importlib.import_module("fedunlearn.apps.client_app")


def ray_init_args(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of ``ray.init`` for ``config`` (Flower's ``init_args``), and
    the environment Ray's processes must start with (set here, before Ray starts)."""
    verbose = config.output.verbose
    if not verbose:
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Ray starts its workers at nice 15 (to keep its own daemons responsive): beside any
    # other job the clients then starve (3.5% of a core each, measured). Clients are the
    # work here, so they run at the same priority as everything else.
    os.environ.setdefault("RAY_worker_niceness", "0")
    args: dict[str, Any] = {
        "logging_level": "INFO" if verbose else "ERROR",
        "log_to_driver": verbose,
        "include_dashboard": False,
    }
    if not os.environ.get("RAY_ADDRESS"):
        # A new local cluster: without this, ray.init reads /tmp/ray/ray_current_cluster,
        # and after a cluster that was killed (not stopped) it waits forever on it.
        args["address"] = "local"
    return args


def start_ray(config: ExperimentConfig) -> None:
    """Start Ray for ``config`` as Flower's Ray backend would (its ``sys.path`` for
    Ray's processes, :func:`ray_init_args`), with :func:`warm_worker` as each worker's
    setup hook; nothing for another backend or when Ray already runs (Flower then uses
    the running Ray, and shuts it down at the end of the simulation)."""
    if config.simulation.backend != "ray":
        return
    import ray

    if ray.is_initialized():
        return
    # As Flower's RayBackend.init_ray: Ray's processes get this sys.path.
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    runtime_env = {
        "env_vars": {"PYTHONPATH": pythonpath},
        "worker_process_setup_hook": f"{__name__}.warm_worker",
    }
    with warnings.catch_warnings():
        if not config.output.verbose:  # as the simulation does for Flower
            warnings.simplefilter("ignore")
        ray.init(runtime_env=runtime_env, **ray_init_args(config))


def start_ray_while_importing(config: ExperimentConfig, modules: list[str]) -> None:
    """:func:`start_ray` for ``config`` while a thread imports ``modules``; return when
    both are done (an import error is raised here). The modules are imported whatever
    the backend."""
    failures: list[BaseException] = []

    def load() -> None:
        try:
            for name in modules:
                importlib.import_module(name)
        except BaseException as err:  # re-raised in the caller's thread
            failures.append(err)

    loader = threading.Thread(target=load, name="fedunlearn-imports", daemon=True)
    loader.start()
    try:
        start_ray(config)
    finally:
        loader.join()
    if failures:
        raise failures[0]
