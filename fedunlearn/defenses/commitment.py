"""Record commitments: a client commits to the records it holds when it joins, so the
server can later check that a record-level request names only those records, without
ever seeing the data.

For each record id the client derives a secret nonce ``n = HMAC(secret, id)`` from a
secret it never shares, and sends ``c = SHA-256(n || id)`` for all its records. To ask
for records to be forgotten it reveals their nonces; the server recomputes
``SHA-256(n || id)`` and checks each against the commitment. A nonce reveals nothing
about the client's other records, and a client cannot prove a record it did not commit
to (it would have to find a preimage).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from flwr.app import ConfigRecord

SECRET_KEY = "commitment-secret"
"""Key in the client's state of its commitment secret (made once per client)."""


def client_secret(state: MutableMapping[str, Any]) -> bytes:
    """The client's secret, created on first use and kept in its state."""
    record = state.get(SECRET_KEY)
    if isinstance(record, ConfigRecord):
        return bytes(record["secret"])
    secret = secrets.token_bytes(32)
    state[SECRET_KEY] = ConfigRecord({"secret": secret})
    return secret


def nonce(secret: bytes, record_id: int) -> bytes:
    """The secret nonce of one record."""
    return hmac.new(secret, str(int(record_id)).encode(), hashlib.sha256).digest()


def digest(nonce_: bytes, record_id: int) -> bytes:
    """The public commitment of one record."""
    return hashlib.sha256(nonce_ + str(int(record_id)).encode()).digest()


def commit(secret: bytes, record_ids: Iterable[int]) -> list[bytes]:
    """The commitment a client sends when it joins: one digest per record."""
    return [digest(nonce(secret, i), i) for i in record_ids]


def prove(secret: bytes, record_ids: Sequence[int]) -> list[bytes]:
    """The nonces that open the commitment for ``record_ids``."""
    return [nonce(secret, i) for i in record_ids]


def uncommitted(
    commitment: frozenset[bytes], record_ids: Sequence[int], proofs: Sequence[bytes]
) -> list[int]:
    """Records of a request that the proofs do not tie to the commitment."""
    if len(proofs) != len(record_ids):
        return list(record_ids)
    return [i for i, n in zip(record_ids, proofs, strict=True) if digest(n, i) not in commitment]
