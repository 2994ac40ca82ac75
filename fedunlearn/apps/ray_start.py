"""Starting Ray for a simulation: the arguments Flower's engine would use, and starting
it early, while the rest of the program is still being prepared.

Flower's Ray backend starts Ray itself unless Ray is already running, and then uses
the running instance. ``ray.init`` takes 4-6 s on a 2-core machine, most of it
waiting for Ray's own processes; importing torch, Flower and scikit-learn takes about
3 s. :func:`start_ray_while_importing` does the two at once (the ``fedunlearn run``
command uses it), with the same arguments as :func:`ray_init_args`, which the
simulation passes to Flower, so whoever starts Ray starts the same Ray. (The driver
builds its world later, while the client actors start: they take longer.)

Each client actor is a new process that Ray starts only when Flower asks for it, and
everything in it is serial: imports, the world, torch's first step. :func:`warm_worker`
does the imports as the process starts and the rest in a thread, so the world and the
first step overlap the actor's own start-up instead of delaying the first messages.

This module imports nothing heavy: it must be importable before the rest.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import threading
import warnings
from typing import Any

from fedunlearn.config.experiment import ExperimentConfig

__all__ = [
    "RAY_ENVIRONMENT",
    "WARM_CONFIG_VARIABLE",
    "ray_init_args",
    "start_ray",
    "start_ray_while_importing",
    "warm_up_from_environment",
    "warm_worker",
]

WARM_CONFIG_VARIABLE = "FEDUNLEARN_WARM_CONFIG"
"""The environment variable that hands Ray's workers the experiment to warm up for."""


def warm_worker() -> None:
    """Ray runs this in each worker process of the job as it starts, before it is given
    an actor: it imports the ClientApp (about 3 s), then returns and, in a thread,
    prepares the process for the experiment the driver named
    (:func:`warm_up_from_environment`) while the actor itself starts up. A first
    message that needs the same world waits for it rather than building it twice.

    Every worker of the job does this, also one that never hosts a client: a world and
    a throwaway model of time and memory, once per process.
    """
    importlib.import_module("fedunlearn.apps.client_app")
    threading.Thread(
        target=warm_up_from_environment, name="fedunlearn-warm-up", daemon=True
    ).start()


def warm_up_from_environment() -> bool:
    """:func:`fedunlearn.apps.client_app.warm_up_client` for the experiment in
    ``FEDUNLEARN_WARM_CONFIG``; whether it ran. Never raises: it is only a head start,
    and whatever fails here fails again in the run, which reports it (logged at debug
    level here)."""
    raw = os.environ.get(WARM_CONFIG_VARIABLE)
    if not raw:
        return False
    try:
        from fedunlearn.apps.client_app import warm_up_client

        warm_up_client(ExperimentConfig.from_dict(json.loads(raw), source="warm-up"))
    except Exception:
        logging.getLogger(__name__).debug("no warm-up for this worker", exc_info=True)
        return False
    return True


RAY_ENVIRONMENT: dict[str, str] = {
    # Ray starts its workers at nice 15 (to keep its own daemons responsive): beside any
    # other job the clients then starve (3.5% of a core each, measured). Clients are the
    # work here, so they run at the same priority as everything else.
    "RAY_worker_niceness": "0",
    # Ray starts one idle worker per CPU as the driver connects, for jobs without a
    # runtime env; this job has one (the warm-up hook), so those workers are never
    # used, and their start-up took CPU from the clients' (0.6-0.9 s later connected).
    "RAY_prestart_worker_first_driver": "0",
    # A message to a client and its reply carry the model (424 KB for the default
    # CNN). Above 100 KB Ray passes them through its object store, which added 5-6 ms
    # to every message (14.1 ms against 8.4 ms, medians, one 8-round run each); up to 2 MiB
    # they now go with the call itself.
    "RAY_max_direct_call_object_size": str(2 * 1024 * 1024),
}
"""Ray settings (environment variables, read by every Ray process as it starts) that
:func:`ray_init_args` sets unless the user set them."""


def ray_init_args(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of ``ray.init`` for ``config`` (Flower's ``init_args``), and
    the environment Ray's processes must start with (set here, before Ray starts)."""
    verbose = config.output.verbose
    if not verbose:
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
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
    env_vars = {"PYTHONPATH": pythonpath}
    with contextlib.suppress(TypeError, ValueError):  # e.g. a TOML date: no warm-up then
        env_vars[WARM_CONFIG_VARIABLE] = json.dumps(config.to_dict())
    runtime_env = {"env_vars": env_vars, "worker_process_setup_hook": f"{__name__}.warm_worker"}
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
