"""Prompt dispatch: Flower's engine hands a message over as soon as the server stores it,
the same messages in the same order, and Flower's own function is back afterwards."""

from __future__ import annotations

import threading
from queue import Queue
from typing import Any

import pytest
from flwr.server.superlink.fleet.vce import vce_api

from fedunlearn.apps import dispatch
from fedunlearn.apps.dispatch import add_messages_promptly, prompt_dispatch


class FakeState:
    """The two methods of Flower's link state that the dispatch uses."""

    def __init__(self) -> None:
        self.undelivered: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def store_message_ins(self, message: tuple[int, str]) -> str:
        with self.lock:
            self.undelivered.append(message)
        return message[1]

    def get_message_ins(self, node_id: int, limit: int | None) -> list[tuple[int, str]]:
        with self.lock:
            mine = [m for m in self.undelivered if m[0] == node_id][:limit]
            for m in mine:
                self.undelivered.remove(m)
        return mine


def start(state: FakeState, nodes: list[int]) -> tuple[Queue[Any], threading.Event, Any]:
    queue: Queue[Any] = Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=add_messages_promptly, args=(state, queue, dict.fromkeys(nodes, 0), stop)
    )
    thread.start()
    return queue, stop, thread


def test_a_stored_message_is_handed_over_without_waiting_for_the_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "IDLE_POLL_SECONDS", 60.0)  # a poll would take a minute
    state = FakeState()
    queue, stop, thread = start(state, [7, 8])
    try:
        state.store_message_ins((8, "first"))
        state.store_message_ins((7, "second"))
        got = {queue.get(timeout=10), queue.get(timeout=10)}
        assert got == {(8, "first"), (7, "second")}
    finally:
        stop.set()
        state.store_message_ins((7, "wake"))  # ends the minute-long wait
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_each_node_gets_its_messages_one_scan_at_a_time_in_order() -> None:
    state = FakeState()
    for m in [(1, "a"), (2, "b"), (1, "c")]:
        state.store_message_ins(m)
    queue, stop, thread = start(state, [1, 2])
    try:
        got = [queue.get(timeout=10) for _ in range(3)]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert got == [(1, "a"), (2, "b"), (1, "c")]


def test_the_state_gets_its_own_store_method_back_when_the_engine_stops() -> None:
    state = FakeState()
    queue, stop, thread = start(state, [1])
    state.store_message_ins((1, "x"))
    assert queue.get(timeout=10) == (1, "x")
    stop.set()
    thread.join(timeout=10)
    assert "store_message_ins" not in vars(state)


def test_prompt_dispatch_replaces_flowers_poll_and_puts_it_back() -> None:
    flowers = vce_api.add_messages_to_queue
    with prompt_dispatch() as prompt:
        assert prompt is True
        assert vce_api.add_messages_to_queue is add_messages_promptly
        with prompt_dispatch() as nested:  # a second simulation in this process
            assert nested is True
        assert vce_api.add_messages_to_queue is add_messages_promptly
    assert vce_api.add_messages_to_queue is flowers


def test_a_flower_with_another_dispatch_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    def other(state: Any, queue: Any, nodes_mapping: Any, f_stop: Any, batch: int) -> None:
        """A later Flower's function, with one more parameter."""

    monkeypatch.setattr(vce_api, "add_messages_to_queue", other)
    with prompt_dispatch() as prompt:
        assert prompt is False
        assert vce_api.add_messages_to_queue is other


def test_a_wrapper_already_on_the_state_is_put_back_not_removed() -> None:
    state = FakeState()
    stored: list[object] = []
    real = state.store_message_ins

    def wrapper(message: tuple[int, str]) -> str:
        stored.append(message)
        return real(message)

    state.store_message_ins = wrapper  # type: ignore[method-assign]
    queue, stop, thread = start(state, [1])
    state.store_message_ins((1, "x"))
    assert queue.get(timeout=10) == (1, "x")
    stop.set()
    thread.join(timeout=10)
    assert vars(state)["store_message_ins"] is wrapper
    assert stored == [(1, "x")]
