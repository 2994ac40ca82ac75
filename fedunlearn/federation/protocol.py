"""What server and clients say to each other: message types and record layouts.

Both sides import these names, so a key is spelled in one place. Messages follow
Flower's Message API: a ``train`` message carries the global model in the ArrayRecord
``"arrays"`` and a :class:`TrainInstruction` in the ConfigRecord ``"config"``; the
reply carries the client's weights in ``"arrays"`` and a :class:`TrainReport` in the
MetricRecord ``"metrics"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from flwr.app import ConfigRecord, MetricRecord

from fedunlearn.federation import contract

ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"
EXPERIMENT = "experiment"
"""ConfigRecord naming the experiment a message belongs to, when several share one
simulation (a sweep)."""

IDENTIFY = "query.identify"
"""Ask a node for its stable client id (partition id) and example count."""
REQUESTS = "query.requests"
"""Gather unlearning requests: clients cannot push to the server, so it asks."""

ASCENT = "train.ascent"
"""Ask a client to unlearn its own data by projected gradient ascent (Halimi et al.)."""

NUM_EXAMPLES = "num-examples"
CLIENT_ID = "partition-id"


class ProtocolError(ValueError):
    """A message does not have the layout this protocol expects."""


@dataclass(frozen=True)
class TrainInstruction:
    """How a client should train in one round.

    ``phase`` tells the client why it trains (``"train"``, ``"calibrate"``, ...);
    ``seed`` with the round and client id determines its local randomness;
    ``exclude_records`` names records of this client that it must leave out (they were
    forgotten at its request).
    """

    server_round: int
    epochs: float
    batch_size: int
    learning_rate: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    phase: str = "train"
    exclude_records: tuple[int, ...] = ()

    def to_config(self) -> ConfigRecord:
        """As a ConfigRecord with hyphenated keys (Flower's convention)."""
        values = asdict(self)
        values["exclude_records"] = [int(i) for i in self.exclude_records]
        return ConfigRecord({k.replace("_", "-"): v for k, v in values.items()})

    @classmethod
    def from_config(cls, record: ConfigRecord) -> TrainInstruction:
        """Read an instruction; a missing or mistyped key raises ProtocolError."""
        required = ("server-round", "epochs", "batch-size", "learning-rate")
        missing = [k for k in required if k not in record]
        if missing:
            raise ProtocolError(f"train instruction lacks {missing}")
        try:
            return cls(
                server_round=int(record["server-round"]),
                epochs=float(record["epochs"]),
                batch_size=int(record["batch-size"]),
                learning_rate=float(record["learning-rate"]),
                momentum=float(record.get("momentum", 0.0)),
                weight_decay=float(record.get("weight-decay", 0.0)),
                seed=int(record.get("seed", 0)),
                phase=str(record.get("phase", "train")),
                exclude_records=tuple(int(i) for i in record.get("exclude-records", [])),
            )
        except (TypeError, ValueError) as err:
            raise ProtocolError(f"malformed train instruction: {err}") from err


@dataclass(frozen=True)
class TrainReport:
    """What a client reports after local training."""

    num_examples: int
    client_id: int
    epochs: float
    steps: int
    loss: float

    def to_metrics(self) -> MetricRecord:
        """The reply's metrics; fedunlearn's clients honour the unlearning contract
        (their instruction carries it) and serve gradient ascent."""
        return MetricRecord(
            {
                NUM_EXAMPLES: int(self.num_examples),
                CLIENT_ID: int(self.client_id),
                "epochs": float(self.epochs),
                "steps": int(self.steps),
                "train-loss": float(self.loss),
                contract.HONOURED: contract.VERSION,
                contract.ASCENT: 1,
            }
        )

    @classmethod
    def from_metrics(cls, record: MetricRecord) -> TrainReport:
        try:
            return cls(
                num_examples=int(record[NUM_EXAMPLES]),
                client_id=int(record[CLIENT_ID]),
                epochs=float(record["epochs"]),
                steps=int(record["steps"]),
                loss=float(record["train-loss"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ProtocolError(f"malformed train report: {err}") from err


@dataclass(frozen=True)
class AscentInstruction:
    """How a client should unlearn its data by projected gradient ascent.

    ``weight`` is the client's share in the aggregate that produced the model it is
    sent (0 if it was not in that round), so it can subtract its own last model to get
    the reference model; ``radius`` 0 lets the client pick the paper's default.
    """

    weight: float
    radius: float
    epochs: float
    batch_size: int
    learning_rate: float
    stop_accuracy: float
    seed: int
    records: tuple[int, ...] = ()
    """Ascend on these of the client's records only (record-level unlearning); the
    reference is then the model as sent."""

    def to_config(self) -> ConfigRecord:
        values = asdict(self)
        values["records"] = [int(i) for i in self.records]
        return ConfigRecord({k.replace("_", "-"): v for k, v in values.items()})

    @classmethod
    def from_config(cls, record: ConfigRecord) -> AscentInstruction:
        try:
            return cls(
                weight=float(record["weight"]),
                radius=float(record["radius"]),
                epochs=float(record["epochs"]),
                batch_size=int(record["batch-size"]),
                learning_rate=float(record["learning-rate"]),
                stop_accuracy=float(record["stop-accuracy"]),
                seed=int(record["seed"]),
                records=tuple(int(i) for i in record.get("records", [])),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ProtocolError(f"malformed ascent instruction: {err}") from err
