"""What a client role is given: its id, its data, the experiment, its persistent state."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.learning.models import build_model

LAST_MODEL = "last-local-model"
"""Key in ``context.state`` of the client's last local model from training."""


@dataclass
class ClientSetup:
    """What a role is given: its id, its data, the experiment, its persistent state."""

    client_id: int
    data: ArrayDataset
    info: DatasetInfo
    config: ExperimentConfig
    state: MutableMapping[str, Any]
    canary_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Record ids of this client's canary records (what it knows it planted)."""
    options: Any = None
    """The role's options (an instance of its ``Options``), from ``[roles.<role>]``."""

    def new_model(self, seed: int | None = None) -> nn.Module:
        """A fresh model of the experiment's architecture (initialised from the
        experiment's seed unless ``seed`` is given)."""
        m = self.config.model
        return build_model(
            m.name,
            self.info.input_shape,
            self.info.num_classes,
            m.hidden,
            seed=self.config.seed if seed is None else seed,
        )
