"""A Grid that tags every message with the experiment it belongs to.

Several experiments of a sweep can share one federation (one simulation start-up, the
clients' data already loaded): the server runs them one after another, each through its
own ``TaggedGrid``, and the ClientApp picks the experiment's config from the tag.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from fedunlearn.federation.protocol import EXPERIMENT


class TaggedGrid(Grid):
    """Wraps a Grid; adds ``{"id": tag}`` under ``"experiment"`` to every message."""

    def __init__(self, grid: Grid, tag: str) -> None:
        self.inner = grid
        self.tag = tag

    def _tag(self, messages: Iterable[Message]) -> list[Message]:
        out = list(messages)
        for message in out:
            message.content[EXPERIMENT] = ConfigRecord({"id": self.tag})
        return out

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(self._tag(messages))

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.inner.send_and_receive(self._tag(messages), timeout=timeout)
