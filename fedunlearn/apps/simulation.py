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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedunlearn.apps.client_app import build_client_app
from fedunlearn.apps.dispatch import prompt_dispatch
from fedunlearn.apps.ray_start import ray_init_args, start_ray
from fedunlearn.apps.server_app import build_server_app, poll_replies_often
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.federation.tagged_grid import TaggedGrid
from fedunlearn.learning.threads import clients_at_once, pin_threads
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.components import resolve_components
from fedunlearn.run.experiment import ExperimentResult, run_group


def simulate(config: ExperimentConfig, *, show_progress: bool = True) -> ExperimentResult:
    """Run ``config`` on the simulation backend it names and return the result.

    ``simulation.backend = "ray"`` uses Flower's simulation engine (one Ray actor per
    ``simulation.client_cpus`` CPUs; set ``RAY_ADDRESS`` to use an existing Ray
    cluster); ``"threads"`` runs the clients in this process, as many at once as
    there are ``client_cpus`` in this machine's cores; ``"inline"`` runs them in this
    process one after another.

    Example::

        from fedunlearn import ExperimentConfig, simulate
        result = simulate(ExperimentConfig().with_overrides(["training.rounds=5"]))
        print(result.metrics.models["federaser"]["attack_success_rate"])
    """
    resolve_components(config)  # fail on a bad config before starting anything
    results: list[ExperimentResult] = []
    server_app = build_server_app(config, on_result=results.append, show_progress=show_progress)
    _start(server_app, build_client_app(config), config)
    if not results:
        raise RuntimeError("the simulation ended without a result; see the log above")
    return results[0]


@dataclass
class GroupOutcome:
    """What one group of a shared simulation produced: results, or the error."""

    results: list[ExperimentResult] = field(default_factory=list)
    error: str = ""


def simulate_groups(
    groups: list[list[ExperimentConfig]],
    run_dirs: list[list[Path]],
    *,
    show_progress: bool = False,
    on_group: Callable[[int, GroupOutcome], None] | None = None,
) -> list[GroupOutcome]:
    """Run groups of experiments in one simulated federation (one start-up).

    Each group shares training (see :func:`fedunlearn.run.experiment.run_group`); groups run
    one after another on the same clients, each through a :class:`TaggedGrid`. All must
    have the same number of clients and simulation settings. A failing group is
    reported in its outcome and the next one runs.
    """
    first = groups[0][0]
    for group in groups:
        for config in group:
            resolve_components(config)
            if (config.federation.num_clients, config.simulation) != (
                first.federation.num_clients,
                first.simulation,
            ):
                raise ValueError("groups sharing a simulation need the same clients and backend")
    tags = {f"g{i}": group[0] for i, group in enumerate(groups)}
    outcomes: list[GroupOutcome] = []
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        if not first.output.verbose:
            logging.getLogger("flwr").setLevel(logging.ERROR)
        poll_replies_often(grid)
        for i, (group, dirs) in enumerate(zip(groups, run_dirs, strict=True)):
            outcome = GroupOutcome()
            try:
                with PhaseProgress(enabled=show_progress) as progress:
                    outcome.results = run_group(
                        TaggedGrid(grid, f"g{i}"), group, run_dirs=dirs, progress=progress
                    )
            except Exception as err:  # recorded; the sweep goes on with the next group
                outcome.error = f"{type(err).__name__}: {err}"
            outcomes.append(outcome)
            if on_group is not None:
                on_group(i, outcome)

    _start(server_app, build_client_app(tags), first)
    return outcomes


def _start(server_app: ServerApp, client_app: ClientApp, config: ExperimentConfig) -> None:
    num_clients, sim = config.federation.num_clients, config.simulation
    if sim.backend in ("inline", "threads"):
        from fedunlearn.federation.inline import run_inline

        if os.environ.get("RAY_ADDRESS"):
            warnings.warn(
                f"RAY_ADDRESS is set, but simulation.backend is {sim.backend!r}: the clients "
                "run in this process, not on that Ray cluster; set simulation.backend = "
                "'ray' to use it",
                stacklevel=3,
            )
        workers = 1 if sim.backend == "inline" else clients_at_once(sim.client_cpus)
        pin_threads(sim.client_cpus)  # every client here, and the server, its share
        run_inline(server_app, client_app, num_clients, seed=config.seed, workers=workers)
    else:
        pin_threads(1)  # the server evaluates while the clients' actors train
        _run_ray(server_app, client_app, num_clients, config)


def _run_ray(
    server_app: ServerApp, client_app: ClientApp, num_clients: int, config: ExperimentConfig
) -> None:
    from flwr.simulation import run_simulation

    verbose = config.output.verbose
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    if not verbose:
        flwr_logger.setLevel(logging.ERROR)
    backend_config = {
        "client_resources": {"num_cpus": config.simulation.client_cpus, "num_gpus": 0.0},
        "init_args": ray_init_args(config),  # used only if Ray stopped in between
    }
    try:
        start_ray(config)  # with the workers' warm-up hook; Flower then uses this Ray
        with warnings.catch_warnings(), prompt_dispatch():
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
