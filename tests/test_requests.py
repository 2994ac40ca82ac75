"""Unlearning requests: format, gathering over Flower, and the owner-only check."""

from __future__ import annotations

import pytest
from flwr.app import ConfigRecord

from fedunlearn.defenses.checks import verify_requests
from fedunlearn.unlearning.requests import ReceivedRequest, RequestFormatError, UnlearningRequest
from tests.fakes import linear_federation

DIRECTIONS = {0: [1.0], 1: [2.0], 2: [3.0]}
EXAMPLES = {0: 1, 1: 1, 2: 1}


def test_request_round_trips_through_a_config_record() -> None:
    for request in (UnlearningRequest(2), UnlearningRequest(2, (5, 9))):
        assert UnlearningRequest.from_record(request.to_record()) == request


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({}, "names no 'target-client'"),
        ({"target-client": "two"}, "must be an integer"),
        ({"target-client": 1, "record-ids": ["a"]}, "list of integers"),
        ({"target-client": 1, "scope": "records"}, "does not match"),
    ],
)
def test_malformed_request_records_say_what_is_wrong(record: dict, message: str) -> None:
    with pytest.raises(RequestFormatError, match=message):
        UnlearningRequest.from_record(ConfigRecord(record))


def test_server_binds_requests_to_the_sender_and_refuses_removing_another_client() -> None:
    from fedunlearn.unlearning.requests import gather_requests

    forged = UnlearningRequest(target_client=2)
    _, grid, registry = linear_federation(
        DIRECTIONS, EXAMPLES, requests={0: [UnlearningRequest(0)], 1: [forged]}
    )
    received = gather_requests(grid, registry, timeout=5)
    assert [(r.requester, r.request) for r in received] == [(0, UnlearningRequest(0)), (1, forged)]
    verification = verify_requests(received, registry)
    assert verification.forget.clients == frozenset({0})
    refused = [d for d in verification.decisions if not d.accepted]
    assert len(refused) == 1 and refused[0].requester == 1
    assert "client 1 asked to remove client 2's data; only the owner may ask" in refused[0].reason
    assert refused[0].check == "owner_only" and refused[0].stage == "S1"


def test_requests_for_unknown_clients_and_malformed_ones_are_refused() -> None:
    _, _, registry = linear_federation(DIRECTIONS, EXAMPLES)
    verification = verify_requests(
        [ReceivedRequest(0, UnlearningRequest(7)), ReceivedRequest(2, None, "bad scope")],
        registry,
    )
    reasons = [d.reason for d in verification.decisions]
    assert not any(d.accepted for d in verification.decisions)
    assert "unknown client 7" in reasons[0]
    assert "malformed request from client 2: bad scope" in reasons[1]


def test_requests_are_read_in_the_order_the_client_sent_them() -> None:
    from fedunlearn.unlearning.requests import _request_order, encode_requests

    sent = [UnlearningRequest(3, (i,)) for i in range(12)]
    keys = list(encode_requests(sent).config_records)
    shuffled = sorted(keys)  # "request-10" sorts before "request-2" as text
    assert shuffled != keys
    assert sorted(shuffled, key=_request_order) == keys
