"""Record commitments (defence stage S1): a client commits, when it joins, to the
records it holds, so a record-level request can later name only those, without the
server ever seeing the data.

For each record the client derives a secret nonce ``n = HMAC(secret, id)`` from a secret
it never shares and a hash ``h`` of the record's content, and sends the record's id with
``c = SHA-256(n || id || h)``. To ask for records to be forgotten it reveals their
``n || h``; the server recomputes ``c`` and checks it against the commitment. The nonce
reveals nothing about the client's other records, and a commitment cannot be opened for a
record the client did not commit to (it would need a preimage).

What binds a client to records it really holds:

* the commitment names as many records as the client trains on (its example count when
  it joined): it cannot pad it with records it does not hold;
* ids are visible to the server, so two clients committing to the same record is seen at
  once: such records are *contested* and nobody may have them removed;
* the digest binds a record's content, not its id alone.

The server learns which record ids each client holds (not their content); in a
simulation ids are rows of one dataset, in a deployment they are whatever a client names
its records by.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
from flwr.app import ConfigRecord

SECRET_KEY = "commitment-secret"
"""Key in the client's state of its commitment secret (made once per client)."""

PROOF_BYTES = 64
"""A proof is the record's nonce (32 bytes) and its content hash (32 bytes)."""


def client_secret(state: MutableMapping[str, Any]) -> bytes:
    """The client's secret, created on first use and kept in its state."""
    record = state.get(SECRET_KEY)
    if isinstance(record, ConfigRecord):
        return bytes(record["secret"])
    secret = secrets.token_bytes(32)
    state[SECRET_KEY] = ConfigRecord({"secret": secret})
    return secret


def content_hashes(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    """A SHA-256 of each record's inputs and label."""
    return [
        hashlib.sha256(np.ascontiguousarray(xi).tobytes() + str(int(yi)).encode()).digest()
        for xi, yi in zip(x, y, strict=True)
    ]


def nonce(secret: bytes, record_id: int) -> bytes:
    """The secret nonce of one record."""
    return hmac.new(secret, str(int(record_id)).encode(), hashlib.sha256).digest()


def digest(proof: bytes, record_id: int) -> bytes:
    """The public commitment to one record, from its proof (nonce and content hash)."""
    return hashlib.sha256(proof[:32] + str(int(record_id)).encode() + proof[32:]).digest()


def prove(secret: bytes, record_ids: Sequence[int], contents: Sequence[bytes]) -> list[bytes]:
    """The proofs that open the commitment for ``record_ids`` (with their content hashes)."""
    return [nonce(secret, i) + h for i, h in zip(record_ids, contents, strict=True)]


def commit(secret: bytes, record_ids: Iterable[int], contents: Iterable[bytes]) -> list[bytes]:
    """The digests a client sends when it joins, one per record (in ``record_ids`` order)."""
    ids = list(record_ids)
    return [digest(p, i) for p, i in zip(prove(secret, ids, list(contents)), ids, strict=True)]


def uncommitted(
    commitment: Mapping[int, bytes], record_ids: Sequence[int], proofs: Sequence[bytes]
) -> list[int]:
    """Records of a request that the proofs do not tie to the commitment."""
    if len(proofs) != len(record_ids):
        return list(record_ids)
    return [
        i
        for i, p in zip(record_ids, proofs, strict=True)
        if len(p) != PROOF_BYTES or commitment.get(int(i)) != digest(p, i)
    ]


def commitment_problem(ids: Sequence[int], digests: Sequence[bytes], num_examples: int) -> str:
    """Why a commitment sent when joining cannot bind its client ("" when it can)."""
    if len(ids) != len(digests):
        return f"its commitment lists {len(ids)} record ids but {len(digests)} digests"
    if len(set(ids)) != len(ids):
        return "its commitment names a record twice"
    if len(ids) != num_examples:
        return (
            f"it committed to {len(ids)} records but trains on {num_examples}: a commitment "
            "must name exactly the records a client holds"
        )
    return ""
