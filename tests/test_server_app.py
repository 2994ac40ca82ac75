"""The ServerApp's handling of the grid Flower gives it."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from flwr.superlink.grid import InMemoryGrid

from fedunlearn.apps.server_app import REPLY_POLL_SECONDS, poll_replies_often


def test_the_simulation_grid_looks_for_replies_every_ten_milliseconds() -> None:
    default = inspect.signature(InMemoryGrid).parameters["pull_interval"].default
    grid = InMemoryGrid.__new__(InMemoryGrid)  # its state is not needed here
    grid.pull_interval = default
    poll_replies_often(grid)
    assert grid.pull_interval == REPLY_POLL_SECONDS == 0.01


def test_grids_that_do_not_poll_or_poll_faster_are_left_alone() -> None:
    deployment = SimpleNamespace()
    poll_replies_often(deployment)
    assert not hasattr(deployment, "pull_interval")
    eager = SimpleNamespace(pull_interval=0.001)
    poll_replies_often(eager)
    assert eager.pull_interval == 0.001
