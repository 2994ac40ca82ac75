"""UpdateHistory: what is kept, the two stores agree, round trips, corrupt files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.history import (
    DiskHistory,
    HistoryError,
    KeptRound,
    MemoryHistory,
    UpdateHistory,
    new_history,
)
from fedunlearn.history.store import HistoryStore

HOOKS = (
    "_store_round",
    "_load_round",
    "_kept_ids",
    "_round_bytes",
    "_global_bytes",
    "_persist",
    "_store_final",
    "_load_final",
)

Make = Callable[..., UpdateHistory]


@pytest.fixture(params=["memory", "disk"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """Build an empty history of either store (each disk history in a new folder)."""
    folders = iter(range(1000))

    def build(delta_t: int = 1, parameter_keys: list[str] | None = None) -> UpdateHistory:
        if request.param == "memory":
            return MemoryHistory(delta_t, parameter_keys)
        return DiskHistory(tmp_path / f"h{next(folders)}", delta_t, parameter_keys)

    return build


def model(value: float, dtype: type = np.float32) -> dict[str, np.ndarray]:
    return {
        "fc.weight": np.full((2, 3), value, dtype=dtype),
        "fc.bias": np.full(2, value, dtype=dtype),
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


def fill_uneven(history: UpdateHistory) -> None:
    """Rounds of different sizes: float32 global models, float64 updates, varying clients,
    a round recorded by participation only, and clients given as numpy integers."""
    history.record(1, model(1), {0: model(0.5, np.float64)}, {0: 10}, [0, 2])
    history.record_participation(2, [4, 1])
    history.record(
        3,
        model(3),
        {np.int64(1): model(1.5, np.float64), 4: model(-2, np.float64)},
        {np.int64(1): 7, 4: 9},
        [4, np.int64(1)],
    )
    history.record(4, model(4), {1: model(9, np.float64)}, {1: 1}, [1])
    history.record(5, model(5), {2: model(2.5, np.float64)}, {2: 30}, [2, 0])
    history.set_final_model(model(42))


def assert_same(a: UpdateHistory, b: UpdateHistory) -> None:
    assert a.rounds == b.rounds
    assert a.participation == b.participation
    assert a.num_rounds == b.num_rounds and a.clients == b.clients
    assert a.delta_t == b.delta_t and a.parameter_keys == b.parameter_keys
    assert a.nbytes == b.nbytes
    for flags in ({}, {"global_models": False}, {"updates": False}):
        assert a.bytes_of(**flags) == b.bytes_of(**flags)
    for t in a.rounds:
        x, y = a[t], b[t]
        assert x.num_examples == y.num_examples and x.sampled == y.sampled
        assert x.clients == y.clients and x.round == y.round == t
        assert list(x.global_model) == list(y.global_model)
        for k in x.global_model:
            np.testing.assert_array_equal(x.global_model[k], y.global_model[k])
            assert x.global_model[k].dtype == y.global_model[k].dtype
        assert list(x.updates) == list(y.updates)
        for c in x.updates:
            assert list(x.updates[c]) == list(y.updates[c])
            for k in x.updates[c]:
                np.testing.assert_array_equal(x.updates[c][k], y.updates[c][k])
                assert x.updates[c][k].dtype == y.updates[c][k].dtype
    assert list(a.final_model) == list(b.final_model)
    for k in a.final_model:
        np.testing.assert_array_equal(a.final_model[k], b.final_model[k])


# ---------------------------------------------------------------------- both stores
def test_keeps_rounds_one_then_every_delta_t_and_participation_of_all(make: Make) -> None:
    history = make(delta_t=2, parameter_keys=["fc.weight", "fc.bias"])
    fill(history)
    assert history.rounds == [1, 3, 5] and len(history) == 3
    assert [kept.round for kept in history] == [1, 3, 5]
    assert 2 not in history and 3 in history
    assert history.participation[2] == (0, 3, 5)
    assert history.num_rounds == 5
    assert history.first_participation(5) == 2
    assert history.first_participation(7) is None
    assert history.clients == [0, 3, 5]
    np.testing.assert_array_equal(history[3].updates[0]["fc.bias"], [30, 30])
    assert history[5].num_examples == {0: 100, 3: 45}
    np.testing.assert_array_equal(history.initial_model["fc.bias"], [1, 1])
    np.testing.assert_array_equal(history.final_model["fc.weight"], np.full((2, 3), 99))


def test_reports_bytes_held(make: Make) -> None:
    # Per kept round: the global model and two updates, each 6 + 2 float32 = 32 bytes.
    history = make(delta_t=2)
    fill(history)
    assert history.nbytes == 3 * 3 * 32
    assert history.bytes_of(updates=False) == 3 * 32
    assert history.bytes_of(global_models=False) == 3 * 2 * 32
    assert history.bytes_of(global_models=False, updates=False) == 0


def test_both_stores_give_the_same_history_for_the_same_records(tmp_path: Path) -> None:
    memory = MemoryHistory(delta_t=2, parameter_keys=["fc.bias"])
    disk = DiskHistory(tmp_path / "h", delta_t=2, parameter_keys=["fc.bias"])
    for history in (memory, disk):
        fill_uneven(history)
    assert_same(memory, disk)
    assert_same(memory, UpdateHistory.open(tmp_path / "h"))
    # What was recorded, not just agreement: float32 globals (32 bytes), float64 updates.
    assert memory.rounds == [1, 3, 5]
    assert memory.participation == {1: (0, 2), 2: (1, 4), 3: (1, 4), 4: (1,), 5: (0, 2)}
    assert memory.bytes_of(updates=False) == 3 * 32
    assert memory.bytes_of(global_models=False) == 4 * 64
    assert memory[3].clients == (1, 4) and memory[3].num_examples == {1: 7, 4: 9}
    assert all(type(c) is int for c in disk[3].updates)
    assert disk.disk_bytes() > disk.nbytes and memory.disk_bytes() == 0


def test_records_are_copies_of_what_was_passed(make: Make) -> None:
    history = make()
    update, start = model(1), model(2)
    history.record(1, start, {0: update}, {0: 1}, [0])
    update["fc.bias"][:] = 7
    start["fc.bias"][:] = 7
    np.testing.assert_array_equal(history[1].updates[0]["fc.bias"], [1, 1])
    np.testing.assert_array_equal(history.initial_model["fc.bias"], [2, 2])


def test_a_kept_round_cannot_be_recorded_twice(make: Make) -> None:
    history = make(delta_t=2)
    fill(history, rounds=2)
    with pytest.raises(HistoryError, match="round 1 is already recorded"):
        history.record(1, model(1), {0: model(1)}, {0: 1}, [0])
    assert history.record(2, model(2), {0: model(2)}, {0: 1}, [0]) is False


def test_asking_for_a_round_that_was_not_kept_names_the_kept_rounds(make: Make) -> None:
    history = make(delta_t=2)
    fill(history)
    with pytest.raises(KeyError, match=r"kept rounds: \[1, 3, 5\]; delta_t = 2"):
        history[2]


def test_without_a_final_model_or_round_one_says_so(make: Make) -> None:
    history = make()
    with pytest.raises(HistoryError, match="no final model"):
        _ = history.final_model
    with pytest.raises(HistoryError, match="round 1 is not in the history"):
        _ = history.initial_model


@pytest.mark.parametrize("store", [MemoryHistory, new_history])
def test_rejects_a_bad_interval(store: Callable[..., UpdateHistory]) -> None:
    with pytest.raises(ValueError, match="delta_t"):
        store(delta_t=0)


def test_rejects_a_bad_interval_on_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="delta_t"):
        DiskHistory(tmp_path / "h", delta_t=0)
    assert not (tmp_path / "h").exists()


# ---------------------------------------------------------------------- copies and the disk
def test_memory_history_round_trips_through_disk(tmp_path: Path) -> None:
    history = MemoryHistory(delta_t=2, parameter_keys=["fc.weight"])
    fill_uneven(history)
    saved = history.save(tmp_path / "h")
    assert isinstance(saved, DiskHistory)
    assert_same(history, saved)
    reopened = UpdateHistory.open(tmp_path / "h")
    assert isinstance(reopened, DiskHistory)
    assert_same(history, reopened)
    assert_same(history, reopened.save(tmp_path / "again"))
    assert saved.nbytes == history.nbytes
    assert saved.disk_bytes() > saved.nbytes


def test_saving_a_history_without_a_final_model_saves_none(tmp_path: Path) -> None:
    history = MemoryHistory()
    history.record(1, model(1), {0: model(1)}, {0: 1}, [0])
    history.save(tmp_path / "h")
    assert not (tmp_path / "h" / "final.npz").exists()
    with pytest.raises(HistoryError, match="no final model"):
        _ = DiskHistory.open(tmp_path / "h").final_model


def test_disk_history_writes_as_it_goes_and_reopens(tmp_path: Path) -> None:
    on_disk = DiskHistory(tmp_path / "h", delta_t=1, parameter_keys=["fc.bias"])
    fill(on_disk, rounds=3)
    in_memory = MemoryHistory(delta_t=1, parameter_keys=["fc.bias"])
    fill(in_memory, rounds=3)
    assert_same(in_memory, on_disk)
    assert_same(in_memory, DiskHistory.open(tmp_path / "h"))
    assert sorted(p.name for p in (tmp_path / "h").glob("round-*.npz")) == [
        "round-00001.npz",
        "round-00002.npz",
        "round-00003.npz",
    ]
    assert not list((tmp_path / "h").glob("*.tmp"))


def test_participation_of_rounds_not_kept_is_on_disk_at_once(tmp_path: Path) -> None:
    history = DiskHistory(tmp_path / "h", delta_t=3)
    history.record(1, model(1), {0: model(1)}, {0: 1}, [0, 1])
    history.record(2, model(2), {0: model(2)}, {0: 1}, [2, 0])
    assert UpdateHistory.open(tmp_path / "h").participation == {1: (0, 1), 2: (0, 2)}
    history.record_participation(3, [5])
    reopened = UpdateHistory.open(tmp_path / "h")
    assert reopened.participation == {1: (0, 1), 2: (0, 2), 3: (5,)}
    assert reopened.rounds == [1] and reopened.delta_t == 3


def test_the_disk_format_is_unchanged(tmp_path: Path) -> None:
    history = DiskHistory(tmp_path / "h", delta_t=2, parameter_keys=["fc.bias"])
    fill(history, rounds=2)
    history.describe_training(aggregation="weighted-mean", clients={"0": {"node": 7}})
    index = json.loads((tmp_path / "h" / "index.json").read_text())
    # Checksums of the files, then the rest of the format exactly.
    assert len(index["rounds"]["1"].pop("sha256")) == 64
    assert len(index["meta"].pop("final_sha256")) == 64
    assert index == {
        "format": "fedunlearn-history",
        "version": 1,
        "delta_t": 2,
        "parameter_keys": ["fc.bias"],
        "precision": "full",
        "compress": False,
        "participation": {"1": [0, 3], "2": [0, 3, 5]},
        "rounds": {
            "1": {
                "file": "round-00001.npz",
                "sampled": [0, 3],
                "num_examples": {"0": 100, "3": 41},
                "nbytes": 96,
                "global_nbytes": 32,
            }
        },
        "meta": {"aggregation": "weighted-mean", "clients": {"0": {"node": 7}}},
    }
    again = DiskHistory.open(tmp_path / "h")
    assert again.aggregation == "weighted-mean" and again.client_nodes == {0: 7}
    copy = again.save(tmp_path / "copy")
    assert {k: v for k, v in copy.meta.items() if k != "final_sha256"} == {
        k: v for k, v in again.meta.items() if k != "final_sha256"
    }
    with np.load(tmp_path / "h" / "round-00001.npz") as npz:
        assert sorted(npz.files) == sorted(
            [f"global::{k}" for k in model(0)]
            + [f"update::{c}::{k}" for c in (0, 3) for k in model(0)]
        )
    with np.load(tmp_path / "h" / "final.npz") as npz:
        assert sorted(npz.files) == ["fc.bias", "fc.weight"]
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == [
        "final.npz",
        "index.json",
        "round-00001.npz",
    ]


def test_refuses_to_overwrite_an_existing_history(tmp_path: Path) -> None:
    fill(DiskHistory(tmp_path / "h", delta_t=1), rounds=1)
    with pytest.raises(HistoryError, match="already holds a history"):
        DiskHistory(tmp_path / "h", delta_t=1)
    with pytest.raises(HistoryError, match="already holds a history"):
        new_history(1, tmp_path / "h")
    with pytest.raises(HistoryError, match="already holds a history"):
        MemoryHistory().save(tmp_path / "h")
    assert DiskHistory.open(tmp_path / "h").rounds == [1]


def test_a_truncated_round_file_is_reported_by_name_and_nothing_is_lost(tmp_path: Path) -> None:
    fill(DiskHistory(tmp_path / "h", delta_t=1), rounds=3)
    file = tmp_path / "h" / "round-00002.npz"
    file.write_bytes(file.read_bytes()[:40])
    history = UpdateHistory.open(tmp_path / "h")
    np.testing.assert_array_equal(history[3].updates[3]["fc.bias"], [-3, -3])
    with pytest.raises(HistoryError, match="round-00002.npz was changed after it was written"):
        history[2]


def test_a_truncated_final_model_is_reported_by_name(tmp_path: Path) -> None:
    fill(DiskHistory(tmp_path / "h", delta_t=1), rounds=1)
    file = tmp_path / "h" / "final.npz"
    file.write_bytes(file.read_bytes()[:40])
    with pytest.raises(HistoryError, match="final.npz was changed after it was written"):
        _ = DiskHistory.open(tmp_path / "h").final_model


def test_a_corrupt_or_missing_index_is_reported(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="index.json is missing"):
        UpdateHistory.open(tmp_path)
    fill(DiskHistory(tmp_path / "h", delta_t=1), rounds=2)
    index = tmp_path / "h" / "index.json"
    good = index.read_text()
    index.write_text("{not json")
    with pytest.raises(HistoryError, match="corrupt"):
        UpdateHistory.open(tmp_path / "h")
    index.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(HistoryError, match="corrupt"):
        DiskHistory.open(tmp_path / "h")
    index.write_text(json.dumps({**json.loads(good), "version": 2}))
    with pytest.raises(HistoryError, match="corrupt.*version 2"):
        DiskHistory.open(tmp_path / "h")
    index.write_text(json.dumps({k: v for k, v in json.loads(good).items() if k != "rounds"}))
    with pytest.raises(HistoryError, match="corrupt"):
        DiskHistory.open(tmp_path / "h")


def test_a_missing_round_file_is_reported(tmp_path: Path) -> None:
    fill(DiskHistory(tmp_path / "h", delta_t=1), rounds=2)
    (tmp_path / "h" / "round-00001.npz").unlink()
    with pytest.raises(HistoryError, match="missing.*round-00001.npz"):
        UpdateHistory.open(tmp_path / "h")


# ---------------------------------------------------------------------- the interface
def test_new_history_picks_the_store(tmp_path: Path) -> None:
    memory = new_history(2, None, ["fc.bias"])
    assert type(memory) is MemoryHistory
    assert memory.delta_t == 2 and memory.parameter_keys == ["fc.bias"]
    disk = new_history(delta_t=3, path=str(tmp_path / "h"), parameter_keys=("fc.bias",))
    assert type(disk) is DiskHistory and disk.path == tmp_path / "h"
    assert disk.delta_t == 3 and disk.parameter_keys == ["fc.bias"]
    assert (tmp_path / "h" / "index.json").is_file()


def test_the_hooks_are_abstract_and_the_stores_implement_them() -> None:
    assert UpdateHistory.__abstractmethods__ == frozenset(HOOKS)
    with pytest.raises(TypeError):
        UpdateHistory()  # type: ignore[abstract]
    for store in (MemoryHistory, DiskHistory):
        assert not store.__abstractmethods__


@pytest.mark.parametrize("missing", HOOKS)
def test_a_store_missing_a_hook_cannot_be_made(missing: str) -> None:
    hooks = {h: getattr(MemoryHistory, h) for h in HOOKS if h != missing}
    partial = type("Partial", (UpdateHistory,), hooks)
    with pytest.raises(TypeError, match=missing):
        partial(delta_t=2)
    complete = type("Complete", (partial,), {missing: getattr(MemoryHistory, missing)})
    assert complete(delta_t=2).delta_t == 2
    # A memory store that puts a hook back to abstract is no store either.
    broken = type("Broken", (MemoryHistory,), {missing: HistoryStore.__dict__[missing]})
    with pytest.raises(TypeError, match=missing):
        broken()


def test_a_kept_round_names_its_clients_and_checks_them() -> None:
    kept = KeptRound(1, model(0), {3: model(1), 0: model(2)}, {0: 1, 3: 2}, (0, 3))
    assert kept.clients == (0, 3) and kept.nbytes == 3 * 32
    with pytest.raises(ValueError, match="same clients"):
        KeptRound(1, model(0), {0: model(1)}, {1: 1}, (0, 1))


def test_an_index_written_before_the_storage_options_opens_at_full_precision(
    tmp_path: Path,
) -> None:
    fill(DiskHistory(tmp_path / "h", delta_t=2), rounds=2)
    index_file = tmp_path / "h" / "index.json"
    index = json.loads(index_file.read_text())
    del index["precision"], index["compress"]
    index_file.write_text(json.dumps(index))
    old = UpdateHistory.open(tmp_path / "h")
    assert (old.precision, old.compress) == ("full", False)
    assert old[1].updates[0]["fc.bias"].dtype == np.float32


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_float16_keeps_half_the_bytes_and_reads_back_in_the_model_dtype(
    tmp_path: Path, store: str
) -> None:
    path = tmp_path / "h" if store == "disk" else None
    history = new_history(1, path, precision="float16")
    third = {"fc.bias": np.full(4, 1 / 3, np.float32)}
    start = {"fc.bias": np.zeros(4, np.float32)}
    history.record(1, start, {0: third}, {0: 5}, [0])
    read = history[1].updates[0]["fc.bias"]
    assert read.dtype == np.float32
    # 1/3 rounded to float16 (11 significant bits), exactly: 0.333251953125.
    np.testing.assert_array_equal(read, np.full(4, 0.333251953125, np.float32))
    assert history.bytes_of(global_models=False) == 4 * 2  # four float16 values
    assert history[1].global_model["fc.bias"].dtype == np.float32  # models stay whole
    if store == "disk":
        again = UpdateHistory.open(tmp_path / "h")
        assert again.precision == "float16"
        np.testing.assert_array_equal(again[1].updates[0]["fc.bias"], read)


def test_compressed_round_files_take_fewer_bytes_and_read_back_the_same(
    tmp_path: Path,
) -> None:
    sizes = {}
    for compress in (False, True):
        history = new_history(1, tmp_path / str(compress), compress=compress)
        zeros = {"fc.weight": np.zeros((64, 64), np.float32)}
        history.record(1, zeros, {0: zeros, 1: zeros}, {0: 1, 1: 1}, [0, 1])
        sizes[compress] = history.disk_bytes()
        reopened = UpdateHistory.open(tmp_path / str(compress))
        assert reopened.compress is compress
        np.testing.assert_array_equal(reopened[1].updates[1]["fc.weight"], zeros["fc.weight"])
    assert sizes[True] < sizes[False] / 10


def test_compression_of_a_memory_history_is_refused() -> None:
    with pytest.raises(ValueError, match="disk histories"):
        new_history(1, None, compress=True)
