"""Run an experiment on a simulated federation from Python.

This is the one place that starts Flower's simulation engine from Python
(``flwr.simulation.run_simulation``, deprecated in Flower 1.42 in favour of
``flwr run``, which this package also supports: see the README). Keeping it here means
a future Flower release changes one function.
"""

from __future__ import annotations

import logging
import os
import warnings

from fedunlearn.client_app import build_client_app
from fedunlearn.components import resolve_components
from fedunlearn.config import ExperimentConfig
from fedunlearn.experiment import ExperimentResult
from fedunlearn.server_app import build_server_app


def simulate(config: ExperimentConfig, *, show_progress: bool = True) -> ExperimentResult:
    """Run ``config`` on the simulation backend it names and return the result.

    ``simulation.backend = "ray"`` uses Flower's simulation engine (one Ray actor per
    ``simulation.client_cpus`` CPUs; set ``RAY_ADDRESS`` to use an existing Ray
    cluster); ``"inline"`` runs every client in this process.

    Example::

        from fedunlearn import ExperimentConfig, simulate
        result = simulate(ExperimentConfig().with_overrides(["training.rounds=5"]))
        print(result.metrics["models"]["federaser"]["attack_success_rate"])
    """
    resolve_components(config)  # fail on a bad config before starting anything
    results: list[ExperimentResult] = []
    server_app = build_server_app(config, on_result=results.append, show_progress=show_progress)
    client_app = build_client_app(config)
    num_clients = config.federation.num_clients
    if config.simulation.backend == "inline":
        from fedunlearn.inline import run_inline

        run_inline(server_app, client_app, num_clients, seed=config.seed)
    else:
        _run_ray(server_app, client_app, num_clients, config)
    if not results:
        raise RuntimeError("the simulation ended without a result; see the log above")
    return results[0]


def _run_ray(server_app, client_app, num_clients: int, config: ExperimentConfig) -> None:
    from flwr.simulation import run_simulation

    verbose = config.output.verbose
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    if not verbose:
        flwr_logger.setLevel(logging.ERROR)
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    backend_config = {
        "client_resources": {"num_cpus": config.simulation.client_cpus, "num_gpus": 0.0},
        "init_args": {
            "logging_level": "INFO" if verbose else "ERROR",
            "log_to_driver": verbose,
            "include_dashboard": False,
        },
    }
    try:
        with warnings.catch_warnings():
            if not verbose:
                warnings.simplefilter("ignore")
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=num_clients,
                backend_config=backend_config,
                verbose_logging=verbose,
            )
    finally:
        flwr_logger.setLevel(level)
