"""UpdateHistory: what is kept, round trips in memory and on disk, corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.history.store import HistoryError, UpdateHistory


def model(value: float) -> dict[str, np.ndarray]:
    return {
        "fc.weight": np.full((2, 3), value, dtype=np.float32),
        "fc.bias": np.full(2, value, dtype=np.float32),
    }


def fill(history: UpdateHistory, rounds: int = 5) -> None:
    for t in range(1, rounds + 1):
        history.record(
            t,
            model(t),
            {0: model(10 * t), 3: model(-t)},
            {0: 100, 3: 40 + t},
            [0, 3, 5] if t == 2 else [0, 3],
        )
    history.set_final_model(model(99))


def assert_same(a: UpdateHistory, b: UpdateHistory) -> None:
    assert a.rounds == b.rounds
    assert a.participation == b.participation
    assert a.delta_t == b.delta_t and a.parameter_keys == b.parameter_keys
    for t in a.rounds:
        x, y = a[t], b[t]
        assert x.num_examples == y.num_examples and x.sampled == y.sampled
        for k in x.global_model:
            np.testing.assert_array_equal(x.global_model[k], y.global_model[k])
        for c in x.updates:
            for k in x.updates[c]:
                np.testing.assert_array_equal(x.updates[c][k], y.updates[c][k])
                assert x.updates[c][k].dtype == y.updates[c][k].dtype
    np.testing.assert_array_equal(a.final_model["fc.bias"], b.final_model["fc.bias"])


def test_keeps_rounds_one_then_every_delta_t_and_participation_of_all() -> None:
    history = UpdateHistory(delta_t=2, parameter_keys=["fc.weight", "fc.bias"])
    fill(history)
    assert history.rounds == [1, 3, 5]
    assert 2 not in history and 3 in history
    assert history.participation[2] == (0, 3, 5)
    assert history.first_participation(5) == 2
    assert history.first_participation(7) is None
    assert history.clients == [0, 3, 5]
    np.testing.assert_array_equal(history[3].updates[0]["fc.bias"], [30, 30])
    assert history[5].num_examples == {0: 100, 3: 45}
    np.testing.assert_array_equal(history.initial_model["fc.bias"], [1, 1])


def test_reports_bytes_held() -> None:
    # Per kept round: the global model and two updates, each 6 + 2 float32 = 32 bytes.
    history = UpdateHistory(delta_t=2)
    fill(history)
    assert history.nbytes == 3 * 3 * 32


def test_memory_history_round_trips_through_disk(tmp_path: Path) -> None:
    history = UpdateHistory(delta_t=2, parameter_keys=["fc.weight"])
    fill(history)
    saved = history.save(tmp_path / "h")
    assert_same(history, saved)
    assert_same(history, UpdateHistory.open(tmp_path / "h"))
    assert saved.nbytes == history.nbytes
    assert saved.disk_bytes() > saved.nbytes


def test_disk_history_writes_as_it_goes_and_reopens(tmp_path: Path) -> None:
    on_disk = UpdateHistory(delta_t=1, path=tmp_path / "h", parameter_keys=["fc.bias"])
    fill(on_disk, rounds=3)
    in_memory = UpdateHistory(delta_t=1, parameter_keys=["fc.bias"])
    fill(in_memory, rounds=3)
    assert_same(in_memory, on_disk)
    assert_same(in_memory, UpdateHistory.open(tmp_path / "h"))
    assert sorted(p.name for p in (tmp_path / "h").glob("round-*.npz")) == [
        "round-00001.npz",
        "round-00002.npz",
        "round-00003.npz",
    ]


def test_refuses_to_overwrite_an_existing_history(tmp_path: Path) -> None:
    fill(UpdateHistory(delta_t=1, path=tmp_path / "h"), rounds=1)
    with pytest.raises(HistoryError, match="already holds a history"):
        UpdateHistory(delta_t=1, path=tmp_path / "h")


def test_a_truncated_round_file_is_reported_by_name_and_nothing_is_lost(tmp_path: Path) -> None:
    fill(UpdateHistory(delta_t=1, path=tmp_path / "h"), rounds=3)
    file = tmp_path / "h" / "round-00002.npz"
    file.write_bytes(file.read_bytes()[:40])
    history = UpdateHistory.open(tmp_path / "h")
    np.testing.assert_array_equal(history[3].updates[3]["fc.bias"], [-3, -3])
    with pytest.raises(HistoryError, match="round-00002.npz is unreadable"):
        history[2]


def test_a_corrupt_or_missing_index_is_reported(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="index.json is missing"):
        UpdateHistory.open(tmp_path)
    fill(UpdateHistory(delta_t=1, path=tmp_path / "h"), rounds=2)
    index = tmp_path / "h" / "index.json"
    index.write_text("{not json")
    with pytest.raises(HistoryError, match="corrupt"):
        UpdateHistory.open(tmp_path / "h")
    index.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(HistoryError, match="corrupt"):
        UpdateHistory.open(tmp_path / "h")


def test_a_missing_round_file_is_reported(tmp_path: Path) -> None:
    fill(UpdateHistory(delta_t=1, path=tmp_path / "h"), rounds=2)
    (tmp_path / "h" / "round-00001.npz").unlink()
    with pytest.raises(HistoryError, match="missing.*round-00001.npz"):
        UpdateHistory.open(tmp_path / "h")


def test_asking_for_a_round_that_was_not_kept_names_the_kept_rounds() -> None:
    history = UpdateHistory(delta_t=2)
    fill(history)
    with pytest.raises(KeyError, match=r"kept rounds: \[1, 3, 5\]"):
        history[2]


def test_rejects_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="delta_t"):
        UpdateHistory(delta_t=0)
