"""Unlearning requests: what a client asks to forget, and how the server gathers them.

Clients cannot push to the server, so the server gathers requests with a Flower
``query`` round (:func:`gather_requests`). Each reply is bound to the identity of the
node that sent it (looked up in the :class:`~fedunlearn.federation.registry.
ClientRegistry`), never to what the request claims. What is accepted becomes a
:class:`ForgetSet`; the checks that decide are defence stage S1
(:mod:`fedunlearn.defenses.checks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flwr.app import ConfigRecord, RecordDict
from flwr.serverapp import Grid

from fedunlearn.federation.protocol import REQUESTS
from fedunlearn.federation.registry import ClientRegistry, ask_every_client

REQUEST_PREFIX = "request-"


class RequestFormatError(ValueError):
    """A request record is malformed."""


@dataclass(frozen=True)
class UnlearningRequest:
    """A request to forget a client's data, or some of its records.

    Parameters
    ----------
    target_client : int
        The client whose data should be forgotten. Only that client may ask.
    record_ids : tuple of int
        Records to forget; empty means the whole client.
    proofs : tuple of bytes
        For each record, the nonce that opens its owner's (``target_client``'s)
        commitment to it.
    """

    target_client: int
    record_ids: tuple[int, ...] = ()
    proofs: tuple[bytes, ...] = ()
    """Commitment openings of ``record_ids`` (see :mod:`fedunlearn.defenses.commitment`)."""

    @property
    def whole_client(self) -> bool:
        """True when the request asks to forget everything the client contributed."""
        return not self.record_ids

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(
            {
                "target-client": int(self.target_client),
                "scope": "client" if self.whole_client else "records",
                "record-ids": [int(r) for r in self.record_ids],
                "record-proofs": [bytes(p) for p in self.proofs],
            }
        )

    @classmethod
    def from_record(cls, record: ConfigRecord) -> UnlearningRequest:
        """Parse a request; RequestFormatError says what is wrong."""
        if "target-client" not in record:
            raise RequestFormatError("request names no 'target-client'")
        target = record["target-client"]
        if isinstance(target, bool) or not isinstance(target, int):
            raise RequestFormatError(f"'target-client' must be an integer, got {target!r}")
        ids = record.get("record-ids", [])
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise RequestFormatError(f"'record-ids' must be a list of integers, got {ids!r}")
        scope = record.get("scope", "client" if not ids else "records")
        if scope not in ("client", "records") or (scope == "records") != bool(ids):
            raise RequestFormatError(
                f"scope {scope!r} does not match {len(ids)} record ids "
                "(use scope 'client' with no ids, or 'records' with some)"
            )
        if len(set(ids)) != len(ids):
            raise RequestFormatError("'record-ids' names a record twice")
        proofs = record.get("record-proofs", [])
        if not isinstance(proofs, list) or not all(isinstance(p, bytes) for p in proofs):
            raise RequestFormatError("'record-proofs' must be a list of bytes")
        return cls(target_client=int(target), record_ids=tuple(ids), proofs=tuple(proofs))


@dataclass(frozen=True)
class ForgetSet:
    """What is to be forgotten: whole clients, and named records of other clients.

    ``records`` maps a client id to the sorted record ids to forget from it; a client
    in ``clients`` is forgotten whole and never appears in ``records``.
    """

    clients: frozenset[int] = frozenset()
    records: tuple[tuple[int, tuple[int, ...]], ...] = ()

    @classmethod
    def of(
        cls, clients: Iterable[int] = (), records: Mapping[int, Iterable[int]] | None = None
    ) -> ForgetSet:
        whole = frozenset(int(c) for c in clients)
        merged = {
            int(c): tuple(sorted({int(i) for i in ids}))
            for c, ids in (records or {}).items()
            if int(c) not in whole and ids
        }
        return cls(whole, tuple(sorted(merged.items())))

    @classmethod
    def from_requests(cls, requests: Iterable[UnlearningRequest]) -> ForgetSet:
        """The union of what ``requests`` ask to forget."""
        clients: set[int] = set()
        records: dict[int, set[int]] = {}
        for r in requests:
            if r.whole_client:
                clients.add(r.target_client)
            else:
                records.setdefault(r.target_client, set()).update(r.record_ids)
        return cls.of(clients, records)

    def __or__(self, other: ForgetSet) -> ForgetSet:
        records = {c: set(ids) for c, ids in self.records}
        for c, ids in other.records:
            records.setdefault(c, set()).update(ids)
        return ForgetSet.of(self.clients | other.clients, records)

    @property
    def record_map(self) -> dict[int, tuple[int, ...]]:
        """Record ids to forget, by client."""
        return dict(self.records)

    def records_of(self, client: int) -> tuple[int, ...]:
        """Record ids of ``client`` to forget (empty for none or a whole client)."""
        return self.record_map.get(client, ())

    @property
    def empty(self) -> bool:
        return not self.clients and not self.records

    @property
    def record_level(self) -> bool:
        """True when some records (not whole clients) are to be forgotten."""
        return bool(self.records)

    def describe(self) -> str:
        parts = [f"client {c}" for c in sorted(self.clients)]
        parts += [f"{len(ids)} records of client {c}" for c, ids in self.records]
        return ", ".join(parts) or "nothing"

    def as_dict(self) -> dict:
        return {
            "clients": sorted(self.clients),
            "records": {str(c): list(i) for c, i in self.records},
        }


def encode_requests(requests: Sequence[UnlearningRequest]) -> RecordDict:
    """A client's reply content for the request-gathering query."""
    return RecordDict({f"{REQUEST_PREFIX}{i}": r.to_record() for i, r in enumerate(requests)})


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the server received it: who sent it, and what it says.

    ``requester`` comes from the sending node's identity; ``request`` is None when the
    record could not be parsed, with the reason in ``problem``.
    """

    requester: int
    request: UnlearningRequest | None
    problem: str = ""


def gather_requests(
    grid: Grid, registry: ClientRegistry, *, timeout: float, min_fraction: float = 1.0
) -> list[ReceivedRequest]:
    """Ask every client for its unlearning requests (a ``query.requests`` round)."""
    replies = ask_every_client(
        grid,
        registry,
        REQUESTS,
        timeout=timeout,
        what="request gathering",
        min_fraction=min_fraction,
    )
    received: list[ReceivedRequest] = []
    for reply in replies:
        requester = registry.client_of(reply.metadata.src_node_id)
        keys = [k for k in reply.content.config_records if k.startswith(REQUEST_PREFIX)]
        for key in sorted(keys, key=_request_order):
            try:
                request = UnlearningRequest.from_record(reply.content.config_records[key])
                received.append(ReceivedRequest(requester, request))
            except RequestFormatError as err:
                received.append(ReceivedRequest(requester, None, str(err)))
    return sorted(received, key=lambda r: r.requester)


def _request_order(key: str) -> tuple[int, str]:
    """``request-2`` before ``request-10``: the order the client sent them in."""
    suffix = key[len(REQUEST_PREFIX) :].lstrip("-")
    return (int(suffix), key) if suffix.isdigit() else (2**31, key)
