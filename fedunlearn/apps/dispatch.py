"""Prompt dispatch in Flower's simulation engine: a message goes to the client actors
as soon as the server sends it, not at the engine's next poll.

Flower 1.42's engine moves the messages the server stores into its work queue in one
thread (``flwr.server.superlink.fleet.vce.vce_api.add_messages_to_queue``) that scans
every node, then sleeps 0.1 s. Each round of a simulation therefore began, on average,
70 ms after the server sent it, with every client idle: 3.4 s of the default run's 49
rounds (measured with timestamps on the server's sends and the clients' starts).

:func:`prompt_dispatch` puts :func:`add_messages_promptly` in its place for the time
of a simulation: the same scan, which also wakes when the server stores a message. It
changes when messages are handed over, never which ones or in what order. With a
Flower whose function is not the one this was written for (another signature), it
leaves Flower's own in place.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from collections.abc import Iterator
from queue import Queue
from typing import Any

__all__ = ["IDLE_POLL_SECONDS", "add_messages_promptly", "prompt_dispatch"]

IDLE_POLL_SECONDS = 0.1
"""How long the scan waits for a new message before it looks again (Flower's poll: the
engine's stop event is checked as often)."""

_FLOWER_PARAMETERS = ("state", "queue", "nodes_mapping", "f_stop")
_INSTALLED = threading.Lock()


def add_messages_promptly(
    state: Any, queue: Queue[Any], nodes_mapping: dict[int, int], f_stop: threading.Event
) -> None:
    """Flower's ``add_messages_to_queue`` (hand each node's next undelivered message
    to the engine's ``queue`` until ``f_stop`` is set), woken by every message the
    server stores in ``state`` rather than only every :data:`IDLE_POLL_SECONDS`."""
    stored = threading.Event()
    store = state.store_message_ins
    own = vars(state).get("store_message_ins")  # a wrapper already on this state, if any

    def store_and_wake(message: Any) -> Any:
        try:
            return store(message)
        finally:
            stored.set()

    state.store_message_ins = store_and_wake  # this state only; undone below
    try:
        while not f_stop.is_set():
            stored.clear()  # before the scan: a message stored during it wakes the next
            for node_id in nodes_mapping:
                for message in state.get_message_ins(node_id=node_id, limit=1):
                    queue.put(message)
            stored.wait(IDLE_POLL_SECONDS)
    finally:
        if own is not None:
            state.store_message_ins = own
        else:
            with contextlib.suppress(AttributeError):
                del state.store_message_ins


@contextlib.contextmanager
def prompt_dispatch() -> Iterator[bool]:
    """Within this block, simulations started in this process dispatch promptly
    (:func:`add_messages_promptly`); yields whether they do."""
    try:
        from flwr.server.superlink.fleet.vce import vce_api
    except ImportError:  # no simulation engine installed: nothing to change
        yield False
        return
    original = getattr(vce_api, "add_messages_to_queue", None)
    if original is None or _parameters(original) != _FLOWER_PARAMETERS:
        logging.getLogger(__name__).debug("Flower's dispatch is not the expected one; kept")
        yield False
        return
    if not _INSTALLED.acquire(blocking=False):  # another simulation here installed it
        yield original is add_messages_promptly
        return
    vce_api.add_messages_to_queue = add_messages_promptly
    try:
        yield True
    finally:
        vce_api.add_messages_to_queue = original
        _INSTALLED.release()


def _parameters(function: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return ()
