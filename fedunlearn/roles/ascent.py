"""A client's side of unlearning by projected gradient ascent (PGA, Halimi et al. 2022):
it climbs its own loss from the aggregate without its contribution, staying in a ball
around it. The server's side is the ``pga`` method in ``fedunlearn.strategies``."""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord
from torch import nn

from fedunlearn.federation.protocol import AscentInstruction
from fedunlearn.learning.arrays import Arrays, from_record, load_arrays, model_to_arrays
from fedunlearn.learning.training import projected_gradient_ascent
from fedunlearn.roles.setup import LAST_MODEL, ClientSetup
from fedunlearn.seeding import derive_seed


def ascend_own_data(
    setup: ClientSetup, arrays: Arrays, instruction: AscentInstruction
) -> tuple[Arrays, dict[str, float]]:
    """Unlearn this client's data by projected gradient ascent (Halimi et al. 2022).

    The reference model is the aggregate without this client:
    ``(w - p * w_last) / (1 - p)`` with ``w_last`` its last local model from
    training and ``p`` its share (``instruction.weight``). The ascent starts there
    and stays within ``radius`` of it (by default a third of the mean distance from
    the reference to three freshly initialised models).
    """
    reference = dict(arrays)
    last = setup.state.get(LAST_MODEL)
    p = instruction.weight
    data = setup.data
    if instruction.records:  # record level: ascend on those records, from the model sent
        data = data.subset(np.flatnonzero(np.isin(data.ids, instruction.records)))
        if len(data) == 0:
            raise ValueError(f"client {setup.client_id} holds none of the records to unlearn")
        p = 0.0
    if 0 < p < 1 and isinstance(last, ArrayRecord):
        mine = from_record(last)
        reference = {k: (np.asarray(arrays[k]) - p * mine[k]) / (1 - p) for k in arrays}
    model = setup.new_model()
    load_arrays(model, reference)
    anchor = {n: t.detach().clone() for n, t in model.named_parameters()}
    radius = instruction.radius or default_radius(setup, model)
    result = projected_gradient_ascent(
        model,
        data,
        anchor,
        radius=radius,
        epochs=instruction.epochs,
        batch_size=instruction.batch_size,
        learning_rate=instruction.learning_rate,
        stop_accuracy=instruction.stop_accuracy,
        seed=derive_seed(instruction.seed, "ascent", setup.client_id),
    )
    metrics = {
        "epochs": result.epochs,
        "steps": float(result.steps),
        "accuracy": result.accuracy,
        "radius": radius,
        "distance": result.distance,
        "used-own-model": float(isinstance(last, ArrayRecord) and 0 < p < 1),
        "records": float(len(data)),
    }
    return model_to_arrays(model), metrics


def default_radius(setup: ClientSetup, reference: nn.Module, draws: int = 3) -> float:
    """A third of the mean L2 distance from ``reference`` to fresh random models."""
    own = dict(reference.named_parameters())
    distances = []
    for i in range(draws):
        fresh = setup.new_model(seed=derive_seed(setup.config.seed, "random-model", i))
        distances.append(
            float(
                sum(
                    ((p.detach() - own[n].detach()) ** 2).sum() for n, p in fresh.named_parameters()
                ).sqrt()
            )
        )
    return float(np.mean(distances)) / 3.0
