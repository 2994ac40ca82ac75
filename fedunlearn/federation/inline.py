"""An in-process federation: every ClientApp call runs in this process.

:class:`InlineGrid` implements Flower's ``Grid`` by calling the real ``ClientApp`` for
each message, with one persistent ``Context`` per node (as the simulation engine
keeps them), random 64-bit node ids (as Flower assigns them), copied message content
(as serialisation would) and error replies for client exceptions. A ServerApp cannot
tell it from the Ray engine.

With ``workers=1`` (``[simulation] backend = "inline"``) the clients run one after
another (in the caller's thread when the server sets no timeout): use it to debug a
strategy or role with breakpoints.
With more (``backend = "threads"``) up to ``workers`` nodes run at once, each in a
thread of its own: torch computes outside Python's lock, so on 2 cores two clients of
one torch thread each trained 1.8-1.9x faster than one after another (and 1.2x
faster than one client on two torch threads), with no process to start. Either way
the replies come back in the order of the messages, so the server aggregates exactly
what it would have aggregated in turn: the figures are the same, bit for bit.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
import uuid
from collections.abc import Iterable

import numpy as np
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

SUPERLINK_NODE_ID = 1

_DELIVERING = threading.local()


def delivering_in_process() -> bool:
    """Whether this thread is running a ``ClientApp`` call for an :class:`InlineGrid`,
    which cuts off stragglers itself (a client needs no deadline of its own then)."""
    return getattr(_DELIVERING, "active", False)


class InlineGrid(Grid):
    """A Grid whose nodes are ``ClientApp`` calls in this process.

    Parameters
    ----------
    client_app : ClientApp
        The app every node runs.
    num_nodes : int
        Number of nodes; node ``i`` gets ``partition-id = i``.
    run_config : dict, optional
        The run config every context sees.
    seed : int
        Seed of the random node ids.
    workers : int
        How many nodes may run at once (1: one after another, in the caller's thread
        when there is no timeout). A node's own messages always run in turn.
    """

    def __init__(
        self,
        client_app: ClientApp,
        num_nodes: int,
        run_config: dict | None = None,
        seed: int = 0,
        workers: int = 1,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
        rng = np.random.default_rng(seed)
        self.client_app = client_app
        self._run = Run.create_empty(run_id=int(rng.integers(1, 2**62)))
        ids = [int(i) for i in rng.choice(2**62, size=num_nodes, replace=False) + 2]
        self.contexts = {
            node_id: Context(
                run_id=self._run.run_id,
                node_id=node_id,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config or {}),
            )
            for i, node_id in enumerate(ids)
        }
        self.workers = workers
        self._replies: dict[str, Message] = {}

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(
            content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id, ttl=ttl
        )

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        ids = [uuid.uuid4().hex for _ in messages]
        for message, message_id in zip(messages, ids, strict=True):
            message.metadata.__dict__["_message_id"] = message_id  # as Flower's InMemoryGrid does
        replies = self._deliver_all(messages, deadline=None)
        self._replies.update({ids[i]: reply for i, reply in replies.items()})
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Deliver the messages and return the replies in the messages' order. A client
        still busy when ``timeout`` (for the whole batch) runs out gives no reply, as a
        straggler on the Ray engine does, and is left behind (its thread is abandoned);
        messages not yet started by then are not delivered."""
        messages = list(messages)
        deadline = None if timeout is None else time.monotonic() + timeout
        replies = self._deliver_all(messages, deadline)
        return [replies[i] for i in range(len(messages)) if i in replies]

    def _deliver_all(self, messages: list[Message], deadline: float | None) -> dict[int, Message]:
        """Replies by message position: every one without a deadline, those finished by
        ``deadline`` with one.

        A client runs on a copy of its node's context, which becomes the node's only if
        the server gets the reply (as the Ray engine keeps the context an actor hands
        back): a straggler left behind changes nothing the next round sees. When this
        returns or raises (the deadline, a failure, Ctrl-C), threads start no further
        messages.
        """
        for message in messages:
            if message.metadata.dst_node_id not in self.contexts:
                raise ValueError(f"message to unknown node {message.metadata.dst_node_id}")
        if deadline is None and self.workers == 1:  # in this thread: breakpoints work
            return {
                i: self._deliver(m, self.contexts[m.metadata.dst_node_id])
                for i, m in enumerate(messages)
            }
        by_node: dict[int, list[int]] = {}
        for i, message in enumerate(messages):
            by_node.setdefault(message.metadata.dst_node_id, []).append(i)
        replies: dict[int, Message] = {}
        failures: list[BaseException] = []
        finished = [0]
        changed = threading.Condition()
        slots = threading.Semaphore(self.workers)
        stopped = threading.Event()  # set, under ``changed``, once the caller stops waiting

        def serve(positions: list[int]) -> None:
            try:
                for i in positions:  # one node's messages in turn, as one context allows
                    if stopped.is_set():
                        break
                    node_id = messages[i].metadata.dst_node_id
                    context = copy.deepcopy(self.contexts[node_id])
                    reply = self._deliver(messages[i], context)
                    with changed:
                        if stopped.is_set():
                            break  # too late: the server has moved on without it
                        replies[i] = reply
                        self.contexts[node_id] = context
            except BaseException as err:  # re-raised in the caller's thread
                failures.append(err)
            finally:
                slots.release()
                with changed:
                    finished[0] += 1
                    changed.notify_all()

        started = 0
        try:
            for positions in by_node.values():
                if failures or not slots.acquire(timeout=_left(deadline)):
                    break  # a client failed, or the deadline passed with every worker busy
                worker = threading.Thread(
                    target=serve, args=(positions,), name="fedunlearn-client", daemon=True
                )
                worker.start()
                started += 1
            with changed:
                changed.wait_for(lambda: finished[0] == started or failures, _left(deadline))
        finally:  # also on Ctrl-C: what the server got is fixed here, nothing starts after
            with changed:
                stopped.set()
                received = dict(replies)
        if failures:
            raise failures[0]
        return received

    def _deliver(self, message: Message, context: Context) -> Message:
        """The reply of the ClientApp to ``message``, run on ``context``."""
        # Copies, as serialisation would make: clients must not alias server state.
        delivered = copy.deepcopy(message)
        _DELIVERING.active = True
        try:
            reply = copy.deepcopy(self.client_app(delivered, context))
        except Exception as err:  # a client failure is an error reply, as in Flower
            reason = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
            error = Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason)
            reply = Message(error, reply_to=delivered)
        finally:
            _DELIVERING.active = False
        reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
        return reply


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (None: no deadline), never negative."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def run_inline(
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    run_config: dict | None = None,
    seed: int = 0,
    workers: int = 1,
) -> InlineGrid:
    """Run ``server_app`` against ``num_nodes`` in-process clients, up to ``workers`` at
    once (:class:`InlineGrid`); return the grid."""
    grid = InlineGrid(client_app, num_nodes, run_config, seed, workers)
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = grid.run.run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    context = Context(
        run_id=grid.run.run_id,
        node_id=SUPERLINK_NODE_ID,
        node_config={},
        state=RecordDict(),
        run_config=dict(run_config or {}),
    )
    server_app(grid, context)
    return grid
