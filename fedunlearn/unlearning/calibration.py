"""FedEraser's calibrated rollback, as plain arithmetic on named arrays.

Liu et al., "FedEraser: Enabling Efficient Client-Level Data Removal from Federated
Learning Models", IWQoS 2021. For each kept round ``t_j`` the remaining clients train
from the current *calibrated* global model ``M~`` and send back weights ``W^_k``.
Then, per client ``k``:

* its calibration update is ``U^_k = W^_k - M~`` (an update, never raw weights);
* it is rescaled to the size of the update the server stored for that client in round
  ``t_j``: ``U~_k = ||U_k|| * U^_k / ||U^_k||``, where ``U_k`` was measured against the
  global model round ``t_j`` *started* from (see :mod:`fedunlearn.history`);
* the calibrated model moves by the example-weighted average of the ``U~_k``.

Each client is rescaled on its own (not the average of the updates), and norms run
over trainable parameters only (buffers such as BatchNorm statistics are excluded and
averaged unscaled). ``granularity`` chooses whether one norm covers the whole model
(``"model"``) or each parameter tensor has its own (``"layer"``; the public FedEraser
code works per layer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedunlearn.learning.arrays import Arrays, add, l2_norm, subtract, weighted_average

NORM_GRANULARITIES = ("model", "layer")


def calibrate_update(
    stored: Mapping[str, np.ndarray],
    fresh: Mapping[str, np.ndarray],
    *,
    parameter_keys: Sequence[str] | None = None,
    granularity: str = "model",
) -> Arrays:
    """Rescale a fresh calibration update to the norm of the stored update.

    Parameters
    ----------
    stored : Arrays
        ``U_k``: the update the server kept for this client in this round.
    fresh : Arrays
        ``U^_k``: the client's calibration update from the calibrated model.
    parameter_keys : sequence of str, optional
        Keys that enter norms and get rescaled (default: all keys). Other keys (buffers)
        are returned unscaled.
    granularity : {"model", "layer"}
        One norm over all ``parameter_keys``, or one norm per key.

    Returns
    -------
    Arrays
        ``U~_k``. A zero fresh update (nothing to point a direction) stays zero.
    """
    if granularity not in NORM_GRANULARITIES:
        raise ValueError(f"granularity must be one of {NORM_GRANULARITIES}, got {granularity!r}")
    keys = list(fresh) if parameter_keys is None else list(parameter_keys)
    missing = [k for k in keys if k not in stored or k not in fresh]
    if missing:
        raise ValueError(f"stored and fresh updates lack parameters {missing}")
    out: Arrays = {k: np.array(v, copy=True) for k, v in fresh.items()}
    groups = [keys] if granularity == "model" else [[k] for k in keys]
    for group in groups:
        fresh_norm = l2_norm(fresh, group)
        factor = l2_norm(stored, group) / fresh_norm if fresh_norm > 0 else 0.0
        for k in group:
            out[k] = (np.asarray(fresh[k], dtype=np.float64) * factor).astype(
                np.asarray(fresh[k]).dtype
            )
    return out


def calibrated_rollback_step(
    calibrated_global: Mapping[str, np.ndarray],
    stored_updates: Mapping[int, Mapping[str, np.ndarray]],
    calibration_weights: Mapping[int, Mapping[str, np.ndarray]],
    num_examples: Mapping[int, int],
    *,
    parameter_keys: Sequence[str] | None = None,
    granularity: str = "model",
) -> Arrays:
    """One FedEraser step: the next calibrated global model.

    Parameters
    ----------
    calibrated_global : Arrays
        ``M~^{t_j}``, the model the calibrating clients started from.
    stored_updates : mapping of client id to Arrays
        ``U_k^{t_j}`` from the history, for every calibrating client.
    calibration_weights : mapping of client id to Arrays
        ``W^_k``: each calibrating client's weights after calibration training.
    num_examples : mapping of client id to int
        Example counts that weight the average.
    parameter_keys, granularity
        As in :func:`calibrate_update`.
    """
    clients = sorted(calibration_weights)
    if not clients:
        raise ValueError("no calibrating client")
    absent = [c for c in clients if c not in stored_updates]
    if absent:
        raise ValueError(f"clients {absent} calibrated but have no stored update this round")
    calibrated = [
        calibrate_update(
            stored_updates[c],
            subtract(calibration_weights[c], calibrated_global),
            parameter_keys=parameter_keys,
            granularity=granularity,
        )
        for c in clients
    ]
    step = weighted_average(calibrated, [num_examples[c] for c in clients])
    return add(calibrated_global, step)
