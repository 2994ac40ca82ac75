"""The server's view of its clients: stable ids, and messages that fail loudly.

Flower gives every node a random 64-bit id per run, and the server cannot read a
node's ``node_config``. So the server asks each node once (an ``identify`` query) and
keeps a :class:`ClientRegistry` from the node id to the client's stable id (its
partition id). Everything the server stores (history, requests, audits) uses the
stable id.

A client that raises comes back as an error reply and Flower's strategies carry on, so
a run that exits 0 may have trained nothing. :func:`send_and_check` counts the replies
and raises :class:`FederationError` when too few came back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedunlearn.federation.protocol import CLIENT_ID, IDENTIFY, METRICS, NUM_EXAMPLES

log = logging.getLogger(__name__)


class FederationError(RuntimeError):
    """Clients did not connect, failed, or replied with something unusable."""


@dataclass(frozen=True)
class ClientInfo:
    """One connected client."""

    client_id: int
    node_id: int
    num_examples: int
    committed_ids: tuple[int, ...] = ()
    """The ids of the records the client committed to when it joined (as sent)."""
    digests: tuple[bytes, ...] = ()
    """Their digests (as sent; see :mod:`fedunlearn.defenses.commitment`)."""
    sent_commitment: bool = True

    @property
    def commitment(self) -> dict[int, bytes]:
        """The digest of each committed record, by record id."""
        return dict(zip(self.committed_ids, self.digests, strict=False))


class ClientRegistry:
    """Stable client ids and the Flower nodes they run on.

    Built by :meth:`discover` (every client identified before training: fedunlearn's
    own federation), or learned from training replies (:meth:`learned`: any Flower
    app, where a client that reports a ``partition-id`` is keyed by it and any other by
    its node id).
    """

    def __init__(self, clients: Iterable[ClientInfo], *, learning: bool = False) -> None:
        self._by_client: dict[int, ClientInfo] = {}
        self._by_node: dict[int, ClientInfo] = {}
        self.learning = learning
        """True when ids are learned from replies (unknown nodes are their own id)."""
        self.id_sources: dict[int, str] = {}
        """How each client's id was learned: ``"partition-id"`` or ``"node-id"``."""
        self.refused: dict[int, str] = {}
        """Nodes refused when they joined (by node id), with the reason."""
        self._claims: dict[int, list[int]] | None = None
        for info in clients:
            self._add(info)

    @classmethod
    def learned(
        cls, nodes: Mapping[int, int] | None = None, examples: Mapping[int, int] | None = None
    ) -> ClientRegistry:
        """A registry that learns ids from replies, starting from ``client -> node``
        (and each client's example count)."""
        registry = cls((), learning=True)
        for client, node in (nodes or {}).items():
            registry.learn(node, client, "recorded", (examples or {}).get(client, 0))
        return registry

    def _add(self, info: ClientInfo) -> None:
        if info.client_id in self._by_client:
            other = self._by_client[info.client_id]
            raise FederationError(
                f"nodes {other.node_id} and {info.node_id} both claim client id "
                f"{info.client_id}; give each SuperNode its own partition-id"
            )
        self._by_client[info.client_id] = info
        self._by_node[info.node_id] = info
        self._claims = None

    def learn(self, node_id: int, client_id: int, source: str, num_examples: int = 0) -> None:
        """Note that ``node_id`` is client ``client_id`` (learning registries only)."""
        known = self._by_node.get(node_id)
        if known is not None and known.client_id == client_id:
            return
        if known is not None:
            raise FederationError(
                f"node {node_id} reported client id {client_id} after {known.client_id}"
            )
        self._add(ClientInfo(client_id, node_id, num_examples))
        self.id_sources[client_id] = source

    @classmethod
    def discover(
        cls, grid: Grid, expected: int, *, connect_timeout: float = 120.0, timeout: float = 120.0
    ) -> ClientRegistry:
        """Wait for ``expected`` nodes, ask each for its client id, build the registry."""
        nodes = wait_for_nodes(grid, expected, connect_timeout)
        messages = [
            Message(RecordDict({"config": ConfigRecord()}), dst_node_id=n, message_type=IDENTIFY)
            for n in nodes
        ]
        # Starting the clients (a Ray actor each, data loaded) counts against the
        # connect timeout, not a round's.
        replies = send_and_check(
            grid, messages, timeout=max(timeout, connect_timeout), what="identify"
        )
        infos = [_identified(reply) for reply in replies]
        claims: dict[int, list[ClientInfo]] = {}
        for info in infos:
            claims.setdefault(info.client_id, []).append(info)
        registry = cls(i for i in infos if len(claims[i.client_id]) == 1)
        for client, claimants in claims.items():
            if len(claimants) > 1:  # nobody can tell which is genuine: none is obeyed
                for info in claimants:
                    registry.refused[info.node_id] = (
                        f"nodes {sorted(c.node_id for c in claimants)} all claim client id "
                        f"{client}; none of them takes part (give each SuperNode its own "
                        "partition-id)"
                    )
                log.warning("refused nodes claiming client %d: %s", client, claimants)
        return registry

    @property
    def client_ids(self) -> list[int]:
        """All client ids, ascending."""
        return sorted(self._by_client)

    def __len__(self) -> int:
        return len(self._by_client)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._by_client

    def node_of(self, client_id: int) -> int:
        """The node id of a client."""
        try:
            return self._by_client[client_id].node_id
        except KeyError:
            raise FederationError(
                f"unknown client {client_id}; connected clients are {self.client_ids}"
            ) from None

    def client_of(self, node_id: int) -> int:
        """The client id behind a node (the identity the server trusts); a learning
        registry takes an unknown node as its own id."""
        info = self._by_node.get(node_id)
        if info is not None:
            return info.client_id
        if self.learning:
            return node_id
        raise FederationError(f"message from unknown node {node_id}")

    @property
    def nodes(self) -> dict[int, int]:
        """The node of every known client."""
        return {c: info.node_id for c, info in sorted(self._by_client.items())}

    def commitment(self, client_id: int) -> Mapping[int, bytes]:
        """The record digests the client committed to when it joined, by record id."""
        return self._by_client[client_id].commitment

    def info(self, client_id: int) -> ClientInfo:
        """Everything the client said when it joined."""
        return self._by_client[client_id]

    def claimants(self, record_id: int) -> list[int]:
        """The clients whose commitments name ``record_id``."""
        if self._claims is None:
            self._claims = {}
            for client, info in sorted(self._by_client.items()):
                for i in set(info.committed_ids):
                    self._claims.setdefault(i, []).append(client)
        return list(self._claims.get(int(record_id), []))

    def num_examples(self, client_id: int) -> int:
        """Examples the client reported when it joined."""
        return self._by_client[client_id].num_examples


def wait_for_nodes(grid: Grid, expected: int, timeout: float) -> list[int]:
    """Node ids once ``expected`` nodes are connected; FederationError after ``timeout``.

    Unlike Flower's own sampling, this never waits forever.
    """
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        if time.monotonic() > deadline:
            raise FederationError(
                f"only {len(nodes)} of {expected} clients connected within {timeout:.0f} s. "
                "Start more SuperNodes, or set federation.num_clients to the number "
                "you run (federation.connect_timeout sets the wait)."
            )
        time.sleep(0.2)


def send_and_check(
    grid: Grid,
    messages: Sequence[Message],
    *,
    timeout: float,
    what: str,
    min_fraction: float = 1.0,
    registry: ClientRegistry | None = None,
) -> list[Message]:
    """Send, wait, and return the replies without errors.

    Raises :class:`FederationError` (naming each failed client and its error) when
    fewer than ``ceil(min_fraction * len(messages))`` good replies arrive.
    """
    messages = list(messages)
    if not messages:
        return []
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    good = [r for r in replies if not r.has_error()]
    name = None if registry is None else (lambda n: f"client {registry.client_of(n)}")
    check_replies(messages, good, [r for r in replies if r.has_error()], what, min_fraction, name)
    return good


def check_replies(
    sent: Sequence[Message],
    good: Sequence[Message],
    failed: Sequence[Message],
    what: str,
    min_fraction: float,
    name: Callable[[int], str] | None = None,
) -> None:
    """Raise FederationError when too few good replies came back for ``sent``, naming
    each failed or silent client (``name`` turns a node id into the client's name)."""
    needed = math.ceil(min_fraction * len(sent))
    if len(good) >= needed:
        if failed:
            log.warning("%s: %d of %d clients failed", what, len(failed), len(sent))
        return
    label = name or (lambda node: f"node {node}")
    answered = {r.metadata.src_node_id for r in (*good, *failed)}
    silent = [m.metadata.dst_node_id for m in sent if m.metadata.dst_node_id not in answered]
    details = [f"{label(r.metadata.src_node_id)}: {r.error.reason.strip()}" for r in failed]
    details += [f"{label(n)}: no reply before the timeout" for n in silent]
    raise FederationError(
        f"{what}: {len(good)} of {len(sent)} clients replied, {needed} needed.\n"
        + "\n".join(details[:10])
        + (f"\n... and {len(details) - 10} more" if len(details) > 10 else "")
    )


def missing_clients(
    sent: Sequence[Message], good: Sequence[Message], client_of: Callable[[int], int]
) -> list[int]:
    """The clients sent a message that sent no good reply (failed or silent)."""
    answered = {r.metadata.src_node_id for r in good}
    return sorted(
        client_of(m.metadata.dst_node_id) for m in sent if m.metadata.dst_node_id not in answered
    )


def ask_every_client(
    grid: Grid,
    registry: ClientRegistry,
    message_type: str,
    *,
    timeout: float,
    what: str,
    min_fraction: float = 1.0,
) -> list[Message]:
    """Send every client an empty ``message_type`` query; the good replies (see
    :func:`send_and_check`)."""
    messages = [
        Message(
            RecordDict({"config": ConfigRecord()}),
            dst_node_id=registry.node_of(c),
            message_type=message_type,
        )
        for c in registry.client_ids
    ]
    return send_and_check(
        grid, messages, timeout=timeout, what=what, min_fraction=min_fraction, registry=registry
    )


def _identified(reply: Message) -> ClientInfo:
    """A client as it described itself when it joined (its id, examples, commitment)."""
    try:
        metrics = reply.content[METRICS]
        num_examples = int(metrics[NUM_EXAMPLES])
        committed = reply.content.config_records.get("commitment")
        ids = [int(i) for i in committed["ids"]] if committed else []
        digests = [bytes(d) for d in committed["digests"]] if committed else []
        return ClientInfo(
            client_id=int(metrics[CLIENT_ID]),
            node_id=reply.metadata.src_node_id,
            num_examples=num_examples,
            committed_ids=tuple(ids),
            digests=tuple(digests),
            sent_commitment=committed is not None,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise FederationError(
            f"node {reply.metadata.src_node_id} answered identify without a client id: {err}"
        ) from err
