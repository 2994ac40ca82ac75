"""Pre-unlearning checks (defence stage S1): decide on every gathered request.

:func:`verify_requests` runs the checks on every request the server gathered (see
:mod:`fedunlearn.unlearning.requests`) and records a decision with its reason for each.
A request is bound to the identity of the node that sent it, never to what it claims.
Checks are small callables, so a new defense hooks in by adding to the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fedunlearn.defenses.commitment import commitment_problem, uncommitted
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.unlearning.requests import ForgetSet, ReceivedRequest, UnlearningRequest


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
    """Refuse a record-level request naming records its owner (the requester, unless the
    owner check is off and it names another) did not commit to when it joined, records
    another client committed to as well (contested), or any record of an owner whose
    commitment does not bind it (it named more or fewer records than it trains on)."""
    assert received.request is not None
    request = received.request
    if request.whole_client:
        return None
    owner = request.target_client
    whose = "it" if owner == received.requester else f"client {owner}"
    info = registry.info(owner)
    problem = (
        commitment_problem(info.committed_ids, info.digests, info.num_examples)
        if info.sent_commitment
        else "it sent no commitment when it joined"
    )
    if problem:
        return f"client {received.requester} asked to remove records, but {whose}: {problem}"
    contested = {i: others for i in request.record_ids if len(others := registry.claimants(i)) > 1}
    if contested:
        shown = ", ".join(
            f"{i} ({' and '.join(map(str, c))})" for i, c in list(contested.items())[:5]
        )
        return (
            f"client {received.requester} asked to remove {len(contested)} records that more "
            f"than one client committed to when they joined, so whose they are is contested: "
            f"{shown}{' ...' if len(contested) > 5 else ''}"
        )
    missing = uncommitted(info.commitment, request.record_ids, request.proofs)
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
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
    """Run every check on every request; the first refusal decides. A request asking
    nothing beyond what the requester's earlier accepted requests ask is merged into them
    (recorded, not served again), so repeating a request costs no second unlearning."""
    verification = Verification()
    granted: dict[int, ForgetSet] = {}
    for item in received:
        decision = _first_refusal(item, registry, [well_formed, *checks])
        if decision is None and item.request is not None:
            asked = ForgetSet.from_requests([item.request])
            before = granted.get(item.requester, ForgetSet())
            if (before | asked) == before and item.requester in granted:
                decision = RequestDecision(
                    item.requester,
                    item.request,
                    False,
                    "asks nothing beyond the requester's earlier accepted requests: merged "
                    "into them",
                    "duplicate",
                )
            else:
                granted[item.requester] = before | asked
                decision = RequestDecision(item.requester, item.request, True, "passed all checks")
        verification.decisions.append(decision)
    return verification


def _first_refusal(
    item: ReceivedRequest, registry: ClientRegistry, checks: Sequence[RequestCheck]
) -> RequestDecision | None:
    for check in checks:
        reason = check(item, registry)
        if reason is not None:
            name = getattr(check, "__name__", type(check).__name__)
            return RequestDecision(item.requester, item.request, False, reason, name)
    return None
