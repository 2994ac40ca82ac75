"""Phase 3, requests: gather unlearning requests with a query round, verify them (defence
stage S1), and plan the stages that serve the accepted ones."""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.defenses.checks import Verification, checks_for, verify_requests
from fedunlearn.federation.registry import ClientRegistry
from fedunlearn.run.context import RunContext
from fedunlearn.unlearning.requests import ForgetSet, gather_requests


@dataclass
class Requests:
    """The decisions on every request, and what each unlearning stage forgets."""

    verification: Verification
    stages: list[ForgetSet]


def plan_stages(verification: Verification, sequential: bool) -> list[ForgetSet]:
    """What each unlearning stage forgets: everything at once, or request by request."""
    accepted = verification.accepted
    if not accepted:
        return []
    if not sequential:
        return [ForgetSet.from_requests(accepted)]
    return [ForgetSet.from_requests([r]) for r in accepted]


class GatherRequests:
    """Ask every client for its requests; decide on each."""

    name = "requests"

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def run(self, registry: ClientRegistry) -> Requests:
        ctx = self.ctx
        fed, d = ctx.config.federation, ctx.config.defense
        received = gather_requests(
            ctx.grid, registry, timeout=fed.timeout, min_fraction=fed.min_reply_fraction
        )
        verification = verify_requests(
            received, registry, checks_for(d.verify_owner, d.verify_commitment, d.max_requests)
        )
        for decision in verification.decisions:
            verdict = "accepted" if decision.accepted else "refused"
            what = (
                "nothing"
                if decision.request is None
                else ForgetSet.from_requests([decision.request]).describe()
            )
            ctx.progress.note(
                f"request from client {decision.requester} to forget {what}: {verdict} "
                f"({decision.reason})"
            )
        stages = plan_stages(verification, ctx.config.unlearning.sequential)
        if not stages:
            ctx.progress.note("no accepted unlearning request: nothing to unlearn")
        return Requests(verification, stages)
