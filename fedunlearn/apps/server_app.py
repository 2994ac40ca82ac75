"""The Flower ServerApp: runs one experiment (see :mod:`fedunlearn.run.experiment`).

``app`` reads the experiment from the run config (``flwr run .``, where
``pyproject.toml``'s ``[tool.flwr.app.config]`` holds the defaults);
:func:`build_server_app` binds a config directly (the ``fedunlearn`` command).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.learning.threads import pin_threads
from fedunlearn.reporting.console import print_summary
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.experiment import ExperimentResult, run_experiment

REPLY_POLL_SECONDS = 0.01
"""How often a simulation's server looks for the replies it waits for."""


def poll_replies_often(grid: Grid) -> None:
    """Make Flower's in-memory grid (the simulation engine's) look for replies every
    :data:`REPLY_POLL_SECONDS` instead of every 0.1 s.

    A round ends when the server sees its last reply; looking every 0.1 s, it waited
    0.05 s on average with every client idle, 50 times in the default run. Grids that
    wait otherwise (a deployment's, the in-process one) are left as they are.
    """
    interval = getattr(grid, "pull_interval", None)
    if isinstance(interval, int | float) and interval > REPLY_POLL_SECONDS:
        grid.pull_interval = REPLY_POLL_SECONDS  # type: ignore[attr-defined]


def build_server_app(
    config: ExperimentConfig | None = None,
    on_result: Callable[[ExperimentResult], None] | None = None,
    show_progress: bool = True,
) -> ServerApp:
    """A ServerApp running ``config`` (None: read it from the run config).

    ``on_result`` receives the result when the run completes.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = config or ExperimentConfig.from_run_config(context.run_config)
        if config is None:  # under flwr run: a process of its own beside the clients'
            pin_threads(1)
        if not cfg.output.verbose:
            logging.getLogger("flwr").setLevel(logging.ERROR)
        poll_replies_often(grid)
        with PhaseProgress(enabled=show_progress) as progress:
            result = run_experiment(grid, cfg, progress=progress)
        if show_progress:
            print_summary(result.metrics, result.run_dir, progress.console)
        if on_result is not None:
            on_result(result)

    return app


app = build_server_app()
