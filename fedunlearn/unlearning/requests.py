"""Unlearning requests: what a client asks, how the server gathers and checks them.

Clients cannot push to the server, so the server gathers requests with a Flower
``query`` round (:func:`gather_requests`). Each reply is bound to the identity of the
node that sent it (looked up in the :class:`~fedunlearn.federation.ClientRegistry`),
never to what the request claims. Then :func:`verify_requests` runs the pre-unlearning
checks (defense stage S1) and records a decision with its reason for every request.

Checks are small callables, so later defenses (commitments, rate limits) hook in by
adding to the list passed to :func:`verify_requests`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedunlearn.defenses.commitment import uncommitted
from fedunlearn.federation.protocol import REQUESTS
from fedunlearn.federation.registry import ClientRegistry, send_and_check

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
    """Commitment openings of ``record_ids`` (see :mod:`fedunlearn.commitment`)."""

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
    messages = [
        Message(
            RecordDict({"config": ConfigRecord()}),
            dst_node_id=registry.node_of(c),
            message_type=REQUESTS,
        )
        for c in registry.client_ids
    ]
    replies = send_and_check(
        grid, messages, timeout=timeout, what="request gathering", min_fraction=min_fraction
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


@dataclass(frozen=True)
class RequestDecision:
    """The server's verdict on one request, with the reason (kept in the results)."""

    requester: int
    request: UnlearningRequest | None
    accepted: bool
    reason: str
    check: str = ""
    stage: str = "S1"

    def as_dict(self) -> dict:
        return {
            "requester": self.requester,
            "target_client": None if self.request is None else self.request.target_client,
            "record_ids": [] if self.request is None else list(self.request.record_ids),
            "accepted": self.accepted,
            "reason": self.reason,
            "check": self.check,
            "stage": self.stage,
        }


RequestCheck = Callable[[ReceivedRequest, ClientRegistry], str | None]
"""A pre-unlearning check: returns a reason to refuse, or None to pass."""


def well_formed(received: ReceivedRequest, registry: ClientRegistry) -> str | None:
    """Refuse requests whose record could not be parsed."""
    if received.request is None:
        return f"malformed request from client {received.requester}: {received.problem}"
    return None


def known_target(received: ReceivedRequest, registry: ClientRegistry) -> str | None:
    """Refuse a request naming a client the server does not know."""
    assert received.request is not None
    target = received.request.target_client
    if target not in registry:
        return f"client {received.requester} asked to remove unknown client {target}"
    return None


def owner_only(received: ReceivedRequest, registry: ClientRegistry) -> str | None:
    """Refuse a request to remove any client other than the requester (forgery)."""
    assert received.request is not None
    target = received.request.target_client
    if target != received.requester:
        return (
            f"client {received.requester} asked to remove client {target}'s data; "
            "only the owner may ask"
        )
    return None


def committed_records(received: ReceivedRequest, registry: ClientRegistry) -> str | None:
    """Refuse a record-level request naming records the requester did not commit to
    when it joined (records it never held).

    The records are checked against the commitment of the client whose data would be
    removed (the requester, unless the owner check is off and it names another).
    """
    assert received.request is not None
    request = received.request
    if request.whole_client:
        return None
    owner = request.target_client
    missing = uncommitted(registry.commitment(owner), request.record_ids, request.proofs)
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        whose = "it" if owner == received.requester else f"client {owner}"
        return (
            f"client {received.requester} asked to remove {len(missing)} records {whose} "
            f"did not commit to when it joined ({shown})"
        )
    return None


class RateLimit:
    """Refuse a client's requests beyond ``limit`` (counted over the run)."""

    __name__ = "rate_limit"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[int, int] = {}

    def __call__(self, received: ReceivedRequest, registry: ClientRegistry) -> str | None:
        count = self.counts.get(received.requester, 0)
        if count >= self.limit:
            return (
                f"client {received.requester} already made {count} requests; the limit is "
                f"{self.limit} (defense.max_requests)"
            )
        self.counts[received.requester] = count + 1
        return None


DEFAULT_CHECKS: tuple[RequestCheck, ...] = (
    well_formed,
    known_target,
    owner_only,
    committed_records,
)


def checks_for(
    verify_owner: bool = True, verify_commitment: bool = True, max_requests: int = 0
) -> tuple[RequestCheck, ...]:
    """The pre-unlearning checks a server runs, from ``[defense]`` (defence stage S1)."""
    checks: list[RequestCheck] = [well_formed, known_target]
    if verify_owner:
        checks.append(owner_only)
    if verify_commitment:
        checks.append(committed_records)
    if max_requests:
        checks.append(RateLimit(max_requests))
    return tuple(checks)


@dataclass
class Verification:
    """Decisions on all gathered requests, and what was accepted."""

    decisions: list[RequestDecision] = field(default_factory=list)

    @property
    def accepted(self) -> list[UnlearningRequest]:
        return [d.request for d in self.decisions if d.accepted and d.request is not None]

    @property
    def forget(self) -> ForgetSet:
        """Everything the accepted requests ask to forget."""
        return ForgetSet.from_requests(self.accepted)


def verify_requests(
    received: Sequence[ReceivedRequest],
    registry: ClientRegistry,
    checks: Sequence[RequestCheck] = DEFAULT_CHECKS,
) -> Verification:
    """Run every check on every request; the first refusal decides."""
    verification = Verification()
    for item in received:
        for check in checks:
            reason = check(item, registry)
            if reason is not None:
                verification.decisions.append(
                    RequestDecision(
                        item.requester,
                        item.request,
                        False,
                        reason,
                        getattr(check, "__name__", type(check).__name__),
                    )
                )
                break
        else:
            verification.decisions.append(
                RequestDecision(item.requester, item.request, True, "passed all checks")
            )
    return verification
