"""FedEraser's calibration step on hand-computed arrays.

Each known mistake of public implementations (DESIGN.md section 4) has a test that
fails on it; the expected numbers are worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedunlearn.unlearning.calibration import calibrate_update, calibrated_rollback_step


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_rescales_the_update_not_the_returned_weights() -> None:
    # Calibrated global g = [1, 1]; the client returns W = [1, 3], so its calibration
    # update is W - g = [0, 2]. Its stored update has norm ||[3, 4]|| = 5, so the
    # calibrated update is 5 * [0, 2] / 2 = [0, 5] and the next global is [1, 6].
    # Rescaling the weights instead would give g + 5 * [1, 3] / sqrt(10) = [2.58, 5.74].
    new = calibrated_rollback_step(
        {"w": arr(1, 1)}, {7: {"w": arr(3, 4)}}, {7: {"w": arr(1, 3)}}, {7: 10}
    )
    np.testing.assert_allclose(new["w"], arr(1, 6))


def test_rescales_each_client_on_its_own_not_their_average() -> None:
    # From g = [0, 0], with equal example counts:
    #   client 1: stored [3, 0] (norm 3), fresh [1, 0] -> calibrated [3, 0]
    #   client 2: stored [0, 1] (norm 1), fresh [0, 2] -> calibrated [0, 1]
    # Their average is [1.5, 0.5].
    # Normalising the average instead: ||mean stored|| = ||[1.5, 0.5]|| = 1.5811,
    # mean fresh = [0.5, 1] (norm 1.1180) -> [0.7071, 1.4142].
    new = calibrated_rollback_step(
        {"w": arr(0, 0)},
        {1: {"w": arr(3, 0)}, 2: {"w": arr(0, 1)}},
        {1: {"w": arr(1, 0)}, 2: {"w": arr(0, 2)}},
        {1: 5, 2: 5},
    )
    np.testing.assert_allclose(new["w"], arr(1.5, 0.5))


def test_average_is_weighted_by_example_counts() -> None:
    # Calibrated updates [3, 0] (30 examples) and [0, 1] (10 examples):
    # 0.75 * [3, 0] + 0.25 * [0, 1] = [2.25, 0.25].
    new = calibrated_rollback_step(
        {"w": arr(0, 0)},
        {1: {"w": arr(3, 0)}, 2: {"w": arr(0, 1)}},
        {1: {"w": arr(1, 0)}, 2: {"w": arr(0, 2)}},
        {1: 30, 2: 10},
    )
    np.testing.assert_allclose(new["w"], arr(2.25, 0.25))


def test_buffers_stay_out_of_norms_and_are_not_rescaled() -> None:
    # Trainable "w": stored [3, 4] (norm 5), fresh [0, 2] -> [0, 5].
    # The BatchNorm-like buffer "bn.running_mean" (stored 100, fresh 7) must not
    # enter either norm and passes through unscaled: 7.
    # Counting it would give a stored norm of sqrt(25 + 10000) and a fresh norm of
    # sqrt(4 + 49), i.e. w = [0, 27.5].
    out = calibrate_update(
        {"w": arr(3, 4), "bn.running_mean": arr(100)},
        {"w": arr(0, 2), "bn.running_mean": arr(7)},
        parameter_keys=["w"],
    )
    np.testing.assert_allclose(out["w"], arr(0, 5))
    np.testing.assert_allclose(out["bn.running_mean"], arr(7))


def test_layer_granularity_uses_one_norm_per_tensor() -> None:
    # stored a = [3, 4] (norm 5), b = [1] (norm 1); fresh a = [1, 0], b = [2].
    # Per layer: a -> [5, 0], b -> [1].
    # Whole model: factor = sqrt(26) / sqrt(5) = 2.2804 -> a = [2.2804, 0], b = [4.5607].
    stored = {"a": arr(3, 4), "b": arr(1)}
    fresh = {"a": arr(1, 0), "b": arr(2)}
    per_layer = calibrate_update(stored, fresh, granularity="layer")
    np.testing.assert_allclose(per_layer["a"], arr(5, 0))
    np.testing.assert_allclose(per_layer["b"], arr(1))
    whole = calibrate_update(stored, fresh, granularity="model")
    factor = np.sqrt(26) / np.sqrt(5)
    np.testing.assert_allclose(whole["a"], arr(factor, 0))
    np.testing.assert_allclose(whole["b"], arr(2 * factor))


def test_zero_calibration_update_stays_zero() -> None:
    out = calibrate_update({"w": arr(3, 4)}, {"w": arr(0, 0)})
    np.testing.assert_array_equal(out["w"], arr(0, 0))


def test_rejects_unknown_granularity_and_clients_without_stored_updates() -> None:
    with pytest.raises(ValueError, match="granularity"):
        calibrate_update({"w": arr(1)}, {"w": arr(1)}, granularity="neuron")
    with pytest.raises(ValueError, match="no stored update"):
        calibrated_rollback_step({"w": arr(0)}, {}, {3: {"w": arr(1)}}, {3: 1})
