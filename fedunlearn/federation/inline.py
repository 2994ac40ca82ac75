"""An in-process federation: every ClientApp call runs in this process, in turn.

:class:`InlineGrid` implements Flower's ``Grid`` by calling the real ``ClientApp`` for
each message, with one persistent ``Context`` per node (as the simulation engine
keeps them), random 64-bit node ids (as Flower assigns them), copied message content
(as serialisation would) and error replies for client exceptions. A ServerApp cannot
tell it from the Ray engine, except that nothing runs in parallel.

Use it to debug a strategy or role with breakpoints, and in tests that must be fast
(``[simulation] backend = "inline"``). Flower's Ray engine remains the default.
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
    """

    def __init__(
        self,
        client_app: ClientApp,
        num_nodes: int,
        run_config: dict | None = None,
        seed: int = 0,
    ) -> None:
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
        self._replies: dict[str, Message] = {}
        self.messages_handled = 0

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
        ids = []
        for message in messages:
            message_id = uuid.uuid4().hex
            message.metadata.__dict__["_message_id"] = message_id  # as Flower's InMemoryGrid does
            self._replies[message_id] = self._deliver(message)
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Deliver each message in turn; a client still busy when ``timeout`` (for the
        whole batch) runs out gives no reply, as a straggler on the Ray engine does, and
        is left behind (its thread is abandoned)."""
        if timeout is None:
            return list(self.pull_messages(self.push_messages(messages)))
        deadline = time.monotonic() + timeout
        replies = []
        for message in messages:
            done: list[Message] = []
            worker = threading.Thread(
                target=lambda m=message, out=done: out.append(self._deliver(m)), daemon=True
            )
            worker.start()
            worker.join(max(0.0, deadline - time.monotonic()))
            if done:
                replies.append(done[0])
        return replies

    def _deliver(self, message: Message) -> Message:
        node_id = message.metadata.dst_node_id
        if node_id not in self.contexts:
            raise ValueError(f"message to unknown node {node_id}")
        # Copies, as serialisation would make: clients must not alias server state.
        delivered = copy.deepcopy(message)
        self.messages_handled += 1
        try:
            reply = copy.deepcopy(self.client_app(delivered, self.contexts[node_id]))
        except Exception as err:  # a client failure is an error reply, as in Flower
            reason = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
            error = Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason)
            reply = Message(error, reply_to=delivered)
        reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
        return reply


def run_inline(
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    run_config: dict | None = None,
    seed: int = 0,
) -> InlineGrid:
    """Run ``server_app`` against ``num_nodes`` inline clients; return the grid."""
    grid = InlineGrid(client_app, num_nodes, run_config, seed)
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
