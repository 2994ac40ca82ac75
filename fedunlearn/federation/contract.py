"""The unlearning contract: what fedunlearn adds to a ``train`` message, and what a
client that honours it says back.

Unlearning runs ordinary Flower ``train`` rounds. A method may ask more of a round
than an app's own config does: calibration trains a fraction of the usual local epochs
(FedEraser), and a record-level request asks its owner to leave records out. The server
writes those wishes into the message's config record under ``unlearn.*`` keys, beside
the app's own keys; a client reads them with :meth:`UnlearningContract.read` and says
it honoured them by adding :meth:`UnlearningContract.reply` to its metrics. A client
that never says so still trains for every method that asks nothing more of it
(retraining, rollback, fine-tuning of whole clients); methods that need more refuse to
run on it with an error saying what to add (docs/client-contract.md).

In a quickstart-style ``ClientApp``::

    from fedunlearn import UnlearningContract

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        contract = UnlearningContract.read(msg)
        epochs = contract.epochs(context.run_config["local-epochs"])
        keep = contract.keep(record_ids)          # drop records forgotten at your request
        ...  # train on the kept records for `epochs` epochs
        metrics = {"train_loss": loss, "num-examples": n,
                   **contract.reply(partition_id=pid, epochs=epochs)}
        return Message(RecordDict({"arrays": ..., "metrics": MetricRecord(metrics)}),
                       reply_to=msg)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Message

PHASE = "unlearn.phase"
"""Why the client trains: ``train``, ``calibrate``, ``retrain``, ``finetune``, ..."""
EPOCHS_SCALE = "unlearn.epochs-scale"
"""Train this fraction of the usual local epochs (calibration)."""
EXCLUDE_RECORDS = "unlearn.exclude-records"
"""Record ids the client must leave out of its training."""

HONOURED = "unlearn.contract"
"""Metric a client adds when it honoured the contract (the contract's version)."""
ASCENT = "unlearn.ascent"
"""Metric a client adds when it also serves ``train.ascent`` messages (PGA)."""
CLIENT_ID = "partition-id"
"""Metric naming the client's stable id; without it the server keys it by node id."""
EPOCHS = "epochs"
"""Metric: local epochs the client trained (what unlearning costs are counted in)."""

VERSION = 1


class ContractError(RuntimeError):
    """A method needs more of a client than the client said it honours."""


@dataclass(frozen=True)
class UnlearningContract:
    """What the server asks of one ``train`` message beyond the app's own config.

    Attributes
    ----------
    phase : str
        Why the client trains (``"train"`` during ordinary training).
    epochs_scale : float
        Train ``epochs_scale`` times the usual local epochs (1 unless calibrating).
    exclude_records : tuple of int
        Record ids to leave out (records forgotten at this client's request).
    """

    phase: str = "train"
    epochs_scale: float = 1.0
    exclude_records: tuple[int, ...] = ()

    @property
    def asks_more(self) -> bool:
        """Whether a client must honour the contract for this round to be right."""
        return self.epochs_scale != 1.0 or bool(self.exclude_records)

    def to_config(self) -> dict[str, str | float | list[int]]:
        """The ``unlearn.*`` entries of a config record."""
        return {
            PHASE: self.phase,
            EPOCHS_SCALE: float(self.epochs_scale),
            EXCLUDE_RECORDS: [int(i) for i in self.exclude_records],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> UnlearningContract:
        """Read the ``unlearn.*`` entries; absent ones mean ordinary training."""
        exclude = config.get(EXCLUDE_RECORDS, [])
        if not isinstance(exclude, Sequence):
            raise ValueError(f"{EXCLUDE_RECORDS} must be a list of record ids, got {exclude!r}")
        scale = config.get(EPOCHS_SCALE, 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
            raise ValueError(f"{EPOCHS_SCALE} must be a number > 0, got {scale!r}")
        return cls(
            phase=str(config.get(PHASE, "train")),
            epochs_scale=float(scale),
            exclude_records=tuple(int(i) for i in exclude),
        )

    @classmethod
    def read(cls, msg: Message, configrecord_key: str = "config") -> UnlearningContract:
        """The contract of a ``train`` message (ordinary training if it carries none)."""
        record = msg.content.config_records.get(configrecord_key, ConfigRecord())
        return cls.from_config(record)

    def epochs(self, usual: float) -> float:
        """The local epochs to train: ``usual`` scaled for calibration."""
        return float(usual) * self.epochs_scale

    def keep(self, record_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """A boolean mask over ``record_ids``: True for the records to train on."""
        ids = np.asarray(record_ids)
        if not self.exclude_records:
            return np.ones(len(ids), dtype=bool)
        return ~np.isin(ids, np.asarray(self.exclude_records))

    def reply(
        self,
        *,
        partition_id: int | None = None,
        epochs: float | None = None,
        ascent: bool = False,
    ) -> dict[str, int | float]:
        """Metrics to add to the reply: the contract honoured, and what the server keys
        and counts the client by."""
        out: dict[str, int | float] = {HONOURED: VERSION}
        if partition_id is not None:
            out[CLIENT_ID] = int(partition_id)
        if epochs is not None:
            out[EPOCHS] = float(epochs)
        if ascent:
            out[ASCENT] = 1
        return out
