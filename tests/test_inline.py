"""The in-process grid: clients one after another ("inline") or several at once
("threads"), replies in the messages' order, a node's messages in turn, stragglers
left behind at the deadline, and the same figures either way."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.apps.simulation import simulate
from fedunlearn.federation.inline import InlineGrid, delivering_in_process
from tests.conftest import small_config


def grid_of(handler, num_nodes: int, workers: int) -> InlineGrid:
    """A grid whose clients answer ``query`` messages with ``handler(partition, content)``."""
    app = ClientApp()

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        value = handler(int(context.node_config["partition-id"]), msg.content["config"])
        return Message(RecordDict({"metrics": MetricRecord({"value": value})}), reply_to=msg)

    return InlineGrid(app, num_nodes=num_nodes, seed=0, workers=workers)


def send(grid: InlineGrid, targets: list[int], timeout: float | None = None) -> list[float]:
    """Query the nodes of ``targets`` (partition ids, in this order); their values."""
    nodes = list(grid.get_node_ids())
    messages = [
        grid.create_message(
            RecordDict({"config": ConfigRecord({"n": n})}), "query", nodes[p], group_id="1"
        )
        for n, p in enumerate(targets)
    ]
    return [
        reply.content["metrics"]["value"]
        for reply in grid.send_and_receive(messages, timeout=timeout)
    ]


def test_threads_run_clients_at_once() -> None:
    # Each client waits until the other has started: only clients running at the same
    # time get past the barrier (one after another it breaks after 10 s: error replies).
    barrier = threading.Barrier(2, timeout=10)

    def meet(partition: int, config: ConfigRecord) -> float:
        barrier.wait()
        return float(partition)

    assert send(grid_of(meet, 2, workers=2), [0, 1]) == [0.0, 1.0]


def test_replies_come_back_in_the_order_of_the_messages() -> None:
    def slower_first(partition: int, config: ConfigRecord) -> float:
        time.sleep(0.05 * (4 - partition))  # the first message finishes last
        return float(partition)

    assert send(grid_of(slower_first, 4, workers=3), [0, 1, 2, 3]) == [0.0, 1.0, 2.0, 3.0]


def test_a_nodes_own_messages_run_one_after_another() -> None:
    running: dict[int, int] = {0: 0, 1: 0}
    overlaps: list[int] = []
    lock = threading.Lock()

    def count(partition: int, config: ConfigRecord) -> float:
        with lock:
            running[partition] += 1
            if running[partition] > 1:
                overlaps.append(partition)
        time.sleep(0.05)
        with lock:
            running[partition] -= 1
        return float(config["n"])

    values = send(grid_of(count, 2, workers=4), [0, 0, 1, 0, 1])
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert overlaps == []


def test_a_straggler_is_left_behind_and_later_messages_are_not_started() -> None:
    release, started = threading.Event(), []

    def straggle(partition: int, config: ConfigRecord) -> float:
        started.append(partition)
        if partition == 0:
            release.wait(30)
        return float(partition)

    grid = grid_of(straggle, 3, workers=1)
    try:
        assert send(grid, [0, 1, 2], timeout=0.5) == []
        assert started == [0]  # the only worker was still busy at the deadline
    finally:
        release.set()
    grid = grid_of(straggle, 3, workers=2)
    release.clear()
    try:
        assert send(grid, [1, 0, 2], timeout=1.0) == [1.0, 2.0]
    finally:
        release.set()


def test_a_client_error_is_an_error_reply_and_others_still_answer() -> None:
    def fail_one(partition: int, config: ConfigRecord) -> float:
        if partition == 1:
            raise RuntimeError("client 1 exploded")
        return float(partition)

    grid = grid_of(fail_one, 3, workers=2)
    nodes = list(grid.get_node_ids())
    messages = [
        grid.create_message(RecordDict({"config": ConfigRecord({})}), "query", n, "1")
        for n in nodes
    ]
    replies = list(grid.send_and_receive(messages))
    assert [r.has_error() for r in replies] == [False, True, False]
    assert "client 1 exploded" in replies[1].error.reason


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_whole_number_of_at_least_one(workers: object) -> None:
    with pytest.raises(ValueError, match="workers must be a whole number of at least 1"):
        grid_of(lambda p, c: 0.0, 2, workers=workers)  # type: ignore[arg-type]


def test_a_message_to_an_unknown_node_is_refused_before_any_client_runs() -> None:
    ran: list[int] = []
    grid = grid_of(lambda p, c: ran.append(p) or 0.0, 2, workers=2)
    node = next(iter(grid.get_node_ids()))
    messages = [
        grid.create_message(RecordDict({"config": ConfigRecord({})}), "query", n, "1")
        for n in (node, 12345)
    ]
    with pytest.raises(ValueError, match="unknown node 12345"):
        grid.send_and_receive(messages)
    assert ran == []


@pytest.mark.parametrize(
    "overrides",
    [(), ("model.name=cnn",), ("privacy.mode=local", "privacy.noise_multiplier=1.0")],
    ids=["mlp", "cnn", "local-dp"],
)
def test_the_threads_backend_gives_the_inline_backends_figures_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: tuple[str, ...]
) -> None:
    from fedunlearn.apps import simulation

    monkeypatch.setattr(simulation, "clients_at_once", lambda client_cpus: 3)  # even on 1 CPU
    results = {
        backend: simulate(
            small_config(tmp_path / backend, f"simulation.backend={backend}", *overrides),
            show_progress=False,
        )
        for backend in ("inline", "threads")
    }
    inline, threads = results["inline"], results["threads"]
    assert set(inline.models) == set(threads.models)
    for name, arrays in inline.models.items():
        for key, value in arrays.items():
            assert np.array_equal(value, threads.models[name][key]), (name, key)
    assert inline.metrics.models == threads.metrics.models


def test_a_client_knows_it_runs_in_process_only_while_the_grid_runs_it() -> None:
    seen: list[bool] = []
    grid = grid_of(lambda p, c: seen.append(delivering_in_process()) or 0.0, 2, workers=2)
    send(grid, [0, 1])
    assert seen == [True, True]
    assert not delivering_in_process()


def test_a_ray_address_with_an_in_process_backend_is_pointed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "192.0.2.2:6390")
    config = small_config(tmp_path, "simulation.backend=threads", "training.rounds=2")
    with pytest.warns(UserWarning, match="set simulation.backend = 'ray' to use it"):
        simulate(config, show_progress=False)


def test_a_straggler_left_behind_changes_nothing_its_nodes_next_message_sees() -> None:
    release = threading.Event()
    app = ClientApp()

    @app.query()
    def count(msg: Message, context: Context) -> Message:
        seen = int(context.state["count"]["n"]) if "count" in context.state else 0
        if msg.content["config"]["straggle"]:
            release.wait(30)
        context.state["count"] = ConfigRecord({"n": seen + 1})
        return Message(RecordDict({"metrics": MetricRecord({"seen": seen})}), reply_to=msg)

    grid = InlineGrid(app, num_nodes=1, seed=0, workers=2)
    node = next(iter(grid.get_node_ids()))

    def ask(straggle: bool, timeout: float | None = None) -> list[int]:
        content = RecordDict({"config": ConfigRecord({"straggle": straggle})})
        message = grid.create_message(content, "query", node, group_id="1")
        replies = grid.send_and_receive([message], timeout=timeout)
        return [int(r.content["metrics"]["seen"]) for r in replies]

    assert ask(False) == [0]
    try:
        assert ask(True, timeout=0.5) == []  # left behind, still running
    finally:
        release.set()
    time.sleep(0.2)  # the straggler finishes now, on its own copy of the context
    assert ask(False) == [1]  # the state the server last got a reply for
