"""Reading training replies: each tied to the stable id of the client that sent it,
its shape checked, and what the client's replies say it can do for unlearning.

A reply must hold one ``ArrayRecord`` and one ``MetricRecord`` with the example count
(Flower's quickstart shape). Everything else fedunlearn reads from it (the client's
``partition-id``, epochs, steps, loss, whether it honours the
:class:`~fedunlearn.federation.contract.UnlearningContract`) is optional and is
recorded as unknown when missing, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flwr.app import Message, RecordDict

from fedunlearn.federation import contract
from fedunlearn.federation.contract import ContractError
from fedunlearn.federation.protocol import CLIENT_ID
from fedunlearn.federation.registry import ClientRegistry, FederationError
from fedunlearn.learning.arrays import Arrays, from_record

__all__ = ["ClientReply", "ReplyReader", "reply_number"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientReply:
    """A good training reply, tied to the stable id of the client that sent it.

    ``epochs``, ``steps`` and ``loss`` are None when the client did not report them.
    """

    client_id: int
    weights: Arrays
    num_examples: int
    content: RecordDict
    node_id: int = 0
    epochs: float | None = None
    steps: int | None = None
    loss: float | None = None
    honours_contract: bool = False
    serves_ascent: bool = False


def reply_number(metrics: Mapping[str, Any], key: str) -> float | None:
    """``metrics[key]`` as a float, or None when it is missing or not a number."""
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ReplyReader:
    """Turns training replies into :class:`ClientReply` objects.

    Parameters
    ----------
    clients : ClientRegistry
        Known clients (a reply's node decides its client), or a registry that learns
        them from replies (keyed by the reported ``partition-id``, else the node id).
    weighted_by_key : str
        The metric holding the example count (the strategy's ``weighted_by_key``).
    """

    def __init__(self, clients: ClientRegistry, weighted_by_key: str) -> None:
        self.clients = clients
        self.weighted_by_key = weighted_by_key
        self.capabilities: dict[int, dict[str, bool]] = {}
        """Per client: whether *every* reply said it honours the contract / serves
        gradient ascent."""

    def read(self, reply: Message) -> ClientReply:
        """The parsed reply; :class:`FederationError` naming the client if its shape is
        wrong."""
        node = reply.metadata.src_node_id
        try:
            (weights,) = reply.content.array_records.values()
            (metrics,) = reply.content.metric_records.values()
            num_examples = int(metrics[self.weighted_by_key])
        except (KeyError, ValueError, TypeError) as err:
            client = self.clients.client_of(node)
            raise FederationError(
                f"client {client} sent a train reply without one ArrayRecord and one "
                f"MetricRecord holding {self.weighted_by_key!r}: {err}"
            ) from err
        client = self._client_of(node, metrics, num_examples)
        steps = reply_number(metrics, "steps")
        parsed = ClientReply(
            client_id=client,
            weights=from_record(weights),
            num_examples=num_examples,
            content=reply.content,
            node_id=node,
            epochs=reply_number(metrics, contract.EPOCHS),
            steps=None if steps is None else int(steps),
            loss=reply_number(metrics, "train-loss"),
            honours_contract=contract.HONOURED in metrics,
            serves_ascent=contract.ASCENT in metrics,
        )
        known = self.capabilities.setdefault(
            client, {"honours_contract": True, "serves_ascent": True}
        )
        known["honours_contract"] &= parsed.honours_contract
        known["serves_ascent"] &= parsed.serves_ascent
        return parsed

    def _client_of(self, node: int, metrics: Mapping[str, Any], num_examples: int) -> int:
        reported = reply_number(metrics, CLIENT_ID)
        if not self.clients.learning:
            client = self.clients.client_of(node)  # the identity the server trusts
            if reported is not None and int(reported) != client:
                log.warning("node of client %d reported client id %d", client, int(reported))
        elif reported is not None:
            client = int(reported)
            self.clients.learn(node, client, "partition-id", num_examples)
        else:
            client = node
            self.clients.learn(node, client, "node-id", num_examples)
        return client


def check_contract(replies: list[ClientReply], asked_more: Mapping[int, bool], phase: str) -> None:
    """Raise :class:`ContractError` for the first client that was asked to train with
    fewer epochs or without some records (``asked_more`` by node) and did not say it
    did."""
    for r in replies:
        if asked_more.get(r.node_id) and not r.honours_contract:
            raise ContractError(
                f"client {r.client_id} was asked to {phase} with a part of its "
                "epochs or without some records, and did not say it did: add "
                "fedunlearn.UnlearningContract to its train handler "
                "(docs/client-contract.md)"
            )
