"""Datasets shipped with packages, local files, the canary and its measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedunlearn.data.canary import apply_trigger, plant_canary, triggered_test_set
from fedunlearn.data.datasets import ArrayDataset, DataError, load_dataset, train_test
from fedunlearn.learning.metrics import accuracy, attack_success_rate, mean_kl, parameter_distance


def test_builtin_datasets_load_offline_as_scaled_images() -> None:
    x, y, info = load_dataset("digits")
    assert x.shape == (1797, 1, 8, 8) and info.num_classes == 10
    assert x.min() >= 0.0 and x.max() == 1.0 and x.dtype == np.float32
    x, y, info = load_dataset("mnist5k")
    assert x.shape == (5000, 1, 28, 28) and info.input_shape == (1, 28, 28)
    assert np.bincount(y).tolist() == [500] * 10


def test_npz_files_load_and_bad_ones_are_explained(tmp_path: Path) -> None:
    good = tmp_path / "d.npz"
    np.savez(good, x=np.random.default_rng(0).integers(0, 255, (20, 6, 6)), y=np.arange(20) % 4)
    x, _, info = load_dataset("npz", str(good))
    assert x.shape == (20, 1, 6, 6) and info.num_classes == 4 and x.max() <= 1.0
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 2)))
    with pytest.raises(DataError, match=f"{bad} must hold arrays 'x' and 'y'"):
        load_dataset("npz", str(bad))
    with pytest.raises(DataError, match="nope.npz' does not exist") as missing:
        load_dataset("npz", str(tmp_path / "nope.npz"))
    assert isinstance(missing.value, FileNotFoundError)  # the command reports it as before
    nan = tmp_path / "nan.npz"
    np.savez(nan, x=np.array([[0.0, np.nan], [1.0, 2.0], [np.inf, 0.0]]), y=np.arange(3))
    with pytest.raises(DataError, match=f"{nan}: 2 of 3 rows of x hold NaN or infinite"):
        load_dataset("npz", str(nan))
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_train_test_split_is_stratified_disjoint_and_keeps_record_ids() -> None:
    x, y, _ = load_dataset("digits")
    train, test = train_test(x, y, 0.2, seed=0)
    assert len(set(train.ids) & set(test.ids)) == 0
    assert len(train) + len(test) == len(y)
    np.testing.assert_array_equal(train.y, y[train.ids])
    assert abs(np.mean(test.y == 3) - np.mean(y == 3)) < 0.01


def test_trigger_sets_the_bottom_right_square_only() -> None:
    x = np.zeros((2, 1, 6, 6), dtype=np.float32)
    out = apply_trigger(x, size=2)
    assert out[:, :, 4:, 4:].min() == 1.0
    assert out.sum() == 2 * 4
    assert x.sum() == 0  # input untouched


def test_canary_poisons_the_requested_share_and_relabels_to_target() -> None:
    data = ArrayDataset(np.zeros((10, 1, 4, 4), np.float32), np.arange(10) % 5, np.arange(100, 110))
    poisoned, ids = plant_canary(data, fraction=0.3, target_class=4, size=2, seed=0)
    assert len(ids) == 3 and set(ids) <= set(data.ids)
    chosen = np.isin(poisoned.ids, ids)
    assert (poisoned.y[chosen] == 4).all()
    np.testing.assert_array_equal(poisoned.y[~chosen], data.y[~chosen])
    assert (poisoned.x[chosen][:, :, 2:, 2:] == 1).all() and poisoned.x[~chosen].sum() == 0


def test_triggered_test_set_leaves_out_the_target_class() -> None:
    test = ArrayDataset(
        np.zeros((6, 1, 4, 4), np.float32), np.array([0, 1, 2, 0, 1, 2]), np.arange(6)
    )
    triggered = triggered_test_set(test, target_class=0, size=1)
    assert sorted(triggered.y.tolist()) == [1, 1, 2, 2]


def test_measures_on_hand_made_outputs() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert accuracy(logits, np.array([0, 1, 1, 1])) == 0.75
    assert attack_success_rate(logits, target_class=1) == 0.5
    # KL([0.5, 0.5] || [0.8, 0.2]) = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2) = 0.22314
    ref = np.log(np.array([[0.5, 0.5]]))
    model = np.log(np.array([[0.8, 0.2]]))
    assert mean_kl(ref, model) == pytest.approx(0.5 * np.log(0.625) + 0.5 * np.log(2.5))
    assert mean_kl(ref, ref) == pytest.approx(0.0)
    a = {"w": np.array([3.0, 0.0]), "b": np.array([100.0])}
    b = {"w": np.array([0.0, 4.0]), "b": np.array([0.0])}
    assert parameter_distance(a, b, ["w"]) == pytest.approx(5.0)
