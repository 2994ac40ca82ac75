"""The messages of a client attacker: the ``query.attack`` the harness sends an
inference-attacker client (the models it would see, the candidates to score, its
settings) and the scores it sends back. Nothing here holds the truth about candidates.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from fedunlearn.attacks.attacker import AttackSettings, CandidateView
from fedunlearn.learning.arrays import Arrays, to_record

ATTACK = "query.attack"
"""Ask an inference-attacker client to score candidates against the models it is sent."""

MEMBERSHIP_ATTACKS = ("mia_baseline", "mia_gap")


def encode_query(
    models: dict[str, Arrays], view: CandidateView, settings: AttackSettings
) -> RecordDict:
    """The ``query.attack`` message content."""
    content = RecordDict({f"model/{label}": to_record(arrays) for label, arrays in models.items()})
    content["candidates/membership"] = _xy_record(*view.membership)
    content["candidates/deletion"] = _xy_record(*view.deletion)
    for c, xy in view.clients.items():
        content[f"candidates/client/{c}"] = _xy_record(*xy)
    content["config"] = ConfigRecord(
        {k: v for k, v in settings.__dict__.items()} | {"labels": list(models)}
    )
    return content


def _xy_record(x: np.ndarray, y: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"x": Array(np.ascontiguousarray(x)), "y": Array(np.ascontiguousarray(y))})


def decode_query(content: RecordDict) -> tuple[dict[str, Arrays], CandidateView, AttackSettings]:
    """Inverse of :func:`encode_query` (on the attacking client)."""
    from fedunlearn.learning.arrays import from_record

    records = content.array_records
    config = dict(content.config_records["config"])
    labels = list(config.pop("labels"))
    models = {label: from_record(records[f"model/{label}"]) for label in labels}

    def xy(key: str) -> tuple[np.ndarray, np.ndarray]:
        return records[key]["x"].numpy(), records[key]["y"].numpy()

    clients = {
        int(k.rsplit("/", 1)[1]): xy(k) for k in records if k.startswith("candidates/client/")
    }
    view = CandidateView(xy("candidates/membership"), xy("candidates/deletion"), clients)
    return models, view, AttackSettings(**config)


def encode_scores(
    scores: dict[str, np.ndarray], clients: dict[str, dict[int, float]]
) -> RecordDict:
    record = ArrayRecord({k: Array(np.asarray(v, dtype=np.float64)) for k, v in scores.items()})
    ranks = ConfigRecord(
        {f"{label}/{c}": float(s) for label, by in clients.items() for c, s in by.items()}
    )
    return RecordDict({"scores": record, "client-scores": ranks})


def decode_scores(content: RecordDict) -> tuple[dict[str, np.ndarray], dict[str, dict[int, float]]]:
    scores = {k: v.numpy() for k, v in content["scores"].items()}
    clients: dict[str, dict[int, float]] = {}
    for key, value in content["client-scores"].items():
        label, _, c = key.rpartition("/")
        clients.setdefault(label, {})[int(c)] = float(value)
    return scores, clients
