"""Bring your own data: save_to_disk folders, tables, image folders, the hub offline,
natural partitions, and one clear error for every kind of bad data."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fedunlearn.cli import main
from fedunlearn.config.dataset import DataConfig
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.data.datasets import DataError, load_data, load_dataset
from fedunlearn.data.partition import PartitionError
from fedunlearn.data.world import federated_data
from fedunlearn.learning.models import build_model
from fedunlearn.reporting.schema import RunMetrics

DOCS = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"
WRITERS = ["w3", "w1", "w0", "w2"]
"""Writers of the image dataset (unsorted: natural clients follow the sorted order)."""


@pytest.fixture(autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, no telemetry, and every Hugging Face cache in a temporary folder.

    ``datasets`` reads these variables when it is first imported (another test may have
    imported it already), so its config module is patched as well.
    """
    import datasets
    import huggingface_hub.constants

    home = tmp_path_factory.mktemp("hf-home")
    for name, value in {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "HF_HOME": str(home),
        "HF_DATASETS_CACHE": str(home / "datasets"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_CACHE_HOME", str(home))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_MODULES_CACHE", home / "modules")
    monkeypatch.setattr(
        datasets.config, "DOWNLOADED_DATASETS_PATH", home / "datasets" / "downloads"
    )
    monkeypatch.setattr(
        datasets.config, "EXTRACTED_DATASETS_PATH", home / "datasets" / "downloads" / "extracted"
    )


# ------------------------------------------------------------------ small datasets


def pixels(count: int, seed: int, shape: tuple[int, ...] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


def save_writers(folder: Path, per_writer: int = 24, size: int = 8) -> tuple[Path, dict]:
    """A DatasetDict of 8x8 grayscale images in 3 classes by 4 writers, saved to disk."""
    import datasets

    n = per_writer * len(WRITERS)
    train = {
        "image": [Image.fromarray(p) for p in pixels(n, 0, (size, size))],
        "label": [i % 3 for i in range(n)],
        "writer": [WRITERS[i % len(WRITERS)] for i in range(n)],
    }
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=["a", "b", "c"]),
            "writer": datasets.Value("string"),
        }
    )
    test = {key: values[:6] for key, values in train.items()}
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(train, features=features),
            "test": datasets.Dataset.from_dict(test, features=features),
        }
    ).save_to_disk(str(folder))
    return folder, train


def save_dataset(folder: Path, columns: dict, features: object = None) -> Path:
    import datasets

    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(folder))  # type: ignore[arg-type]
    return folder


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def table_rows(n: int = 30) -> list[str]:
    """Rows of ``f1,f2,f3,label,city``: three numeric features, a label, a string."""
    rng = np.random.default_rng(1)
    return [
        f"{rng.normal():.4f},{rng.integers(0, 100)},{rng.normal():.4f},{i % 3},city{i % 2}"
        for i in range(n)
    ]


def data(**keys: object) -> DataConfig:
    return DataConfig(**keys)  # type: ignore[arg-type]


def config(*overrides: str) -> ExperimentConfig:
    return ExperimentConfig().with_overrides(
        ["canary.enabled=false", "federation.num_clients=4", *overrides]
    )


def data_error(config_: DataConfig) -> str:
    with pytest.raises(DataError) as err:
        load_data(config_)
    return str(err.value)


# ------------------------------------------------------------------ loading


def test_a_saved_datasetdict_of_images_is_split_naturally_one_client_per_writer(
    tmp_path: Path,
) -> None:
    folder, train = save_writers(tmp_path / "writers")
    world = federated_data(
        config(
            "data.dataset=disk",
            f"data.path={folder}",
            "data.partition=natural",
            "data.partition_by=writer",
        )
    )
    assert world.info.input_shape == (1, 8, 8) and world.info.num_classes == 3
    source = pixels(len(train["label"]), 0)
    writers = np.array(train["writer"])
    seen = []
    for client, writer in zip(world.clients, sorted(WRITERS), strict=True):
        assert set(writers[client.ids]) == {writer}  # client i is the i-th writer, sorted
        np.testing.assert_array_equal(client.x[:, 0], source[client.ids] / np.float32(255))
        np.testing.assert_array_equal(client.y, np.array(train["label"])[client.ids])
        seen += client.ids.tolist()
    # Record ids are positions in the split; clients and the test set cover it once.
    assert sorted(seen + world.test.ids.tolist()) == list(range(len(writers)))
    assert world.clients[0].x.dtype == np.float32 and world.clients[0].x.max() <= 1.0


def test_the_split_is_train_by_default_else_the_one_asked_for(tmp_path: Path) -> None:
    folder, _ = save_writers(tmp_path / "writers")
    assert len(load_data(data(dataset="disk", path=str(folder))).y) == 96
    assert len(load_data(data(dataset="disk", path=str(folder), split="test")).y) == 6
    text = data_error(data(dataset="disk", path=str(folder), split="valid"))
    assert "data.split = 'valid' is not a split of" in text and "its splits: train, test" in text
    import datasets

    two = tmp_path / "two"
    one = datasets.Dataset.from_dict({"x": [1.0, 2.0], "label": [0, 1]})
    datasets.DatasetDict({"a": one, "b": one}).save_to_disk(str(two))
    text = data_error(data(dataset="disk", path=str(two)))
    assert "has the splits a, b and none is 'train'; set data.split" in text


def test_csv_and_parquet_tables_become_float_rows_of_their_numeric_columns(
    tmp_path: Path,
) -> None:
    csv = write_csv(tmp_path / "t.csv", "f1,f2,f3,label,city", table_rows())
    loaded = load_data(data(dataset="csv", path=str(csv)))
    assert loaded.x.shape == (30, 3) and loaded.x.dtype == np.float32  # city is left out
    assert loaded.info.input_shape == (3,) and loaded.info.num_classes == 3
    first = table_rows()[0].split(",")
    np.testing.assert_allclose(loaded.x[0], [float(v) for v in first[:3]], rtol=1e-6)
    chosen = load_data(data(dataset="csv", path=str(csv), features=["f2"]))
    np.testing.assert_array_equal(chosen.x[:, 0], loaded.x[:, 1])

    table = pa.table({"a": np.arange(12.0), "b": np.arange(12) * 2, "label": np.arange(12) % 2})
    pq.write_table(table, tmp_path / "t.parquet")
    loaded = load_data(data(dataset="parquet", path=str(tmp_path / "t.parquet")))
    np.testing.assert_array_equal(loaded.x, np.stack([np.arange(12.0), np.arange(12) * 2], 1))
    np.testing.assert_array_equal(loaded.y, np.arange(12) % 2)

    # A folder: files named after splits become splits; a glob reads what it matches.
    folder = tmp_path / "tables"
    folder.mkdir()
    pq.write_table(table, folder / "train.parquet")
    pq.write_table(table.slice(0, 4), folder / "test.parquet")
    (folder / "README.md").write_text("not data")
    assert len(load_data(data(dataset="parquet", path=str(folder))).y) == 12
    assert len(load_data(data(dataset="parquet", path=str(folder), split="test")).y) == 4
    assert len(load_data(data(dataset="parquet", path=str(folder / "*.parquet"))).y) == 16


def test_json_lines_and_a_world_of_table_rows(tmp_path: Path) -> None:
    rows = [f'{{"a": {i}, "b": {i % 5}, "label": {i % 2}}}' for i in range(40)]
    (tmp_path / "t.jsonl").write_text("\n".join(rows))
    world = federated_data(
        config("data.dataset=json", f"data.path={tmp_path / 't.jsonl'}", "model.name=mlp")
    )
    assert world.info.input_shape == (2,) and len(world.clients) == 4
    assert sum(len(c) for c in world.clients) + len(world.test) == 40


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3)])
def test_an_image_folder_of_pngs_gives_images_in_0_1_and_sorted_class_names(
    tmp_path: Path, mode: str, channels: int
) -> None:
    shape = (8, 8) if mode == "L" else (8, 8, 3)
    for c, name in enumerate(["cat", "dog"]):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i, p in enumerate(pixels(5, c, shape)):
            Image.fromarray(p, mode=mode).save(tmp_path / "img" / name / f"{i}.png")
    loaded = load_data(data(dataset="imagefolder", path=str(tmp_path / "img")))
    assert loaded.x.shape == (10, channels, 8, 8) and loaded.x.dtype == np.float32
    assert sorted(loaded.y.tolist()) == [0] * 5 + [1] * 5 and loaded.info.num_classes == 2
    dog = pixels(5, 1, shape).astype(np.float32) / 255
    expected = dog[:, None] if mode == "L" else dog.transpose(0, 3, 1, 2)
    got = loaded.x[loaded.y == 1]
    assert any(np.array_equal(got[i], expected[0]) for i in range(5))


def test_the_builtins_still_load_as_before() -> None:
    x, y, info = load_dataset("digits")
    loaded = load_data(data(dataset="digits"))
    np.testing.assert_array_equal(loaded.x, x)
    np.testing.assert_array_equal(loaded.y, y)
    assert loaded.info == info and loaded.groups is None


# ------------------------------------------------------------------ bad data


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    for kind, path in [
        ("csv", tmp_path / "nope.csv"),
        ("disk", tmp_path / "nope"),
        ("imagefolder", tmp_path / "no-images"),
        ("npz", tmp_path / "nope.npz"),
    ]:
        text = data_error(data(dataset=kind, path=str(path)))
        assert f"data.path '{path}' does not exist" in text, kind
    text = data_error(data(dataset="parquet", path=str(tmp_path / "*.parquet")))
    assert "matches no file" in text


def test_unreadable_and_malformed_files_are_named_with_the_reason(tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "bad.csv", "a,b,label", ["1,2", "1,2,3,4,5"])
    text = data_error(data(dataset="csv", path=str(bad)))
    assert f"cannot read {bad} as csv" in text
    (tmp_path / "bad.parquet").write_text("not parquet")
    text = data_error(data(dataset="parquet", path=str(tmp_path / "bad.parquet")))
    assert "bad.parquet as parquet" in text and "Parquet magic bytes not found" in text
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("x")
    text = data_error(data(dataset="disk", path=str(tmp_path / "plain")))
    assert f"{tmp_path / 'plain'} is not a folder written by save_to_disk" in text
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    text = data_error(data(dataset="npz", path=str(tmp_path / "broken.npz")))
    assert "broken.npz is not a readable .npz file" in text


def test_empty_data_is_refused(tmp_path: Path) -> None:
    empty = write_csv(tmp_path / "empty.csv", "a,b,label", [])
    assert f"{empty} is empty: it has no rows" in data_error(data(dataset="csv", path=str(empty)))
    folder = save_dataset(tmp_path / "none", {"a": [], "label": []})
    assert "is empty: it has no rows" in data_error(data(dataset="disk", path=str(folder)))
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 3)), y=np.zeros(0, np.int64))
    text = data_error(data(dataset="npz", path=str(tmp_path / "empty.npz")))
    assert "empty.npz holds no examples" in text
    np.savez(tmp_path / "noxy.npz", images=np.zeros((3, 2)))
    text = data_error(data(dataset="npz", path=str(tmp_path / "noxy.npz")))
    assert "noxy.npz must hold arrays 'x' and 'y'; it holds ['images']" in text


def test_missing_columns_are_named_with_the_columns_there_are(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "t.csv", "f1,f2,f3,label,city", table_rows())
    columns = "its columns: f1, f2, f3, label, city"
    text = data_error(data(dataset="csv", path=str(csv), label="target"))
    assert "has no column 'target' (data.label)" in text and columns in text
    text = data_error(data(dataset="csv", path=str(csv), features=["f1", "f9"]))
    assert "has no column 'f9' (data.features)" in text and columns in text
    text = data_error(data(dataset="csv", path=str(csv), partition="natural", partition_by="town"))
    assert "has no column 'town' (data.partition_by)" in text and columns in text


def test_labels_must_be_integers_or_class_labels(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "t.csv", "f1,f2,f3,label,city", table_rows())
    text = data_error(data(dataset="csv", path=str(csv), label="city"))
    assert "the label column 'city' holds non-numeric labels (text)" in text
    assert "class_encode_column('city')" in text
    text = data_error(data(dataset="csv", path=str(csv), label="f1"))
    assert "the label column 'f1' holds non-integer labels (float64)" in text
    gaps = write_csv(tmp_path / "gaps.csv", "a,label", ["1.0,0", "2.0,", "3.0,1"])
    text = data_error(data(dataset="csv", path=str(gaps)))
    assert "the label column 'label' has no value in 1 of 3 rows" in text
    folder = save_dataset(tmp_path / "neg", {"a": [1.0, 2.0, 3.0], "label": [0, -1, 1]})
    text = data_error(data(dataset="disk", path=str(folder)))
    assert "1 rows have a negative label in 'label'" in text


def test_nan_or_infinite_features_are_counted_by_row(tmp_path: Path) -> None:
    rows = ["1.0,2.0,0", "nan,2.0,1", "1.0,,0", "inf,1.0,1", "0.5,0.5,0", "1.5,2.5,1"]
    csv = write_csv(tmp_path / "nan.csv", "a,b,label", rows)
    text = data_error(data(dataset="csv", path=str(csv)))
    assert str(csv) in text
    assert "3 of 6 rows hold NaN, missing or infinite values in the features (a, b)" in text


def test_features_of_mixed_shapes_are_refused(tmp_path: Path) -> None:
    import datasets

    images = [Image.fromarray(p) for p in pixels(3, 0)] + [Image.fromarray(pixels(1, 1, (9, 9))[0])]
    folder = save_dataset(
        tmp_path / "sizes",
        {"image": images, "label": [0, 1, 0, 1]},
        datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}),
    )
    text = data_error(data(dataset="disk", path=str(folder)))
    assert "features of mixed shapes: the images in 'image' have sizes 8x8, 9x9" in text
    folder = save_dataset(
        tmp_path / "ragged", {"vec": [[1.0, 2.0], [1.0], [3.0, 4.0]], "label": [0, 1, 0]}
    )
    text = data_error(data(dataset="disk", path=str(folder), features=["vec"]))
    assert "features of mixed shapes: the column 'vec' holds arrays shaped (1,), (2,)" in text


def test_text_features_are_refused_and_arrays_keep_their_shape(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "t.csv", "f1,f2,f3,label,city", table_rows())
    text = data_error(data(dataset="csv", path=str(csv), features=["f1", "city"]))
    assert "feature columns must hold numbers, arrays of numbers or images; 'city'" in text
    grids = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    folder = save_dataset(tmp_path / "grids", {"grid": grids.tolist(), "label": [0, 1, 0]})
    loaded = load_data(data(dataset="disk", path=str(folder), features=["grid"]))
    np.testing.assert_array_equal(loaded.x, grids[:, None])  # one channel, not rescaled


def test_natural_partitions_need_as_many_clients_as_writers(tmp_path: Path) -> None:
    folder, _ = save_writers(tmp_path / "writers")
    over = ["data.dataset=disk", f"data.path={folder}", "data.partition=natural"]
    with pytest.raises(PartitionError) as err:
        federated_data(config(*over, "data.partition_by=writer", "federation.num_clients=6"))
    assert "data.partition_by = 'writer' has 4 distinct values" in str(err.value)
    assert "federation.num_clients = 6; set federation.num_clients = 4" in str(err.value)
    with pytest.raises(DataError, match="no value in 1 of 3 rows"):
        load_data(
            data(
                dataset="disk",
                path=str(
                    save_dataset(
                        tmp_path / "g", {"a": [1.0] * 3, "label": [0, 1, 0], "w": ["x", None, "y"]}
                    )
                ),
                partition="natural",
                partition_by="w",
            )
        )


def test_the_hub_offline_says_how_to_prepare_the_data_elsewhere() -> None:
    text = data_error(data(dataset="hf:ylecun/mnist"))
    assert "cannot load 'ylecun/mnist' from the Hugging Face Hub" in text
    assert "datasets.load_dataset('ylecun/mnist').save_to_disk('<folder>')" in text
    assert "data.dataset = 'disk'" in text


def test_a_canary_class_the_data_lacks_is_a_data_error(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "t.csv", "f1,f2,f3,label,city", table_rows())
    over = ["canary.enabled=true", "canary.target_class=5", "data.dataset=csv"]
    with pytest.raises(DataError, match=r"canary.target_class 5 is not a class of csv"):
        federated_data(config(*over, f"data.path={csv}"))


# ------------------------------------------------------------------ config


def test_data_keys_are_checked_up_front_naming_the_key_and_allowed_values() -> None:
    cases = {
        "data.dataset=cifar": "data.dataset must be one of 'digits', 'mnist5k', 'npz', "
        "'disk', 'csv', 'parquet', 'json', 'imagefolder' or 'hf:<hub name>'",
        "data.dataset=hf:": "got 'hf:'",
        "data.dataset=csv": "data.path must name the .csv file, glob or folder when "
        "data.dataset = 'csv'",
        "data.partition=natural": "data.partition = 'natural' needs data.partition_by",
        "data.partition_by=writer": "data.partition_by = 'writer' is read only when "
        "data.partition = 'natural' (got 'iid')",
        "data.features=['label']": "data.features must not hold the label column 'label'",
    }
    for override, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            ExperimentConfig().with_overrides([override])
        assert expected in str(err.value), override
    with pytest.raises(ConfigError, match="'mnist5k' has none"):
        ExperimentConfig().with_overrides(["data.partition=natural", "data.partition_by=w"])
    ok = ExperimentConfig().with_overrides(
        ["data.dataset=hf:ylecun/mnist", 'data.features=["image"]', "data.split=test"]
    )
    assert ok.data.hub_name == "ylecun/mnist" and ok.data.features == ["image"]
    assert ExperimentConfig.from_run_config(ok.to_run_config()) == ok


# ------------------------------------------------------------------ the command


def write_run_config(tmp_path: Path, *overrides: str) -> Path:
    base = [
        "name=byod",
        "simulation.backend=inline",
        "model.name=mlp",
        "model.hidden=16",
        "training.rounds=2",
        "training.local_epochs=1",
        "history.delta_t=1",
        'unlearning.methods=["rollback"]',
        "output.figures=false",
        f"output.dir={tmp_path / 'results'}",
    ]
    path = tmp_path / "exp.toml"
    path.write_text(ExperimentConfig().with_overrides([*base, *overrides]).to_toml())
    return path


def test_a_run_on_a_saved_dataset_split_by_writer_completes(tmp_path: Path) -> None:
    folder, _ = save_writers(tmp_path / "writers")
    path = write_run_config(
        tmp_path,
        "data.dataset=disk",
        f"data.path={folder}",
        "data.partition=natural",
        "data.partition_by=writer",
        "federation.num_clients=4",
        "canary.target_class=1",
        "canary.trigger_size=2",
        "canary.memorization=5",
    )
    assert main(["check", str(path)]) == 0
    assert main(["run", str(path), "--quiet"]) == 0
    (run,) = (tmp_path / "results").glob("byod-seed0-*")
    metrics = RunMetrics.load(run)
    assert metrics.status == "complete"
    assert {"original", "rollback", "retrain"} <= set(metrics.models)


def test_check_loads_the_data_and_builds_the_model(tmp_path: Path, capsys) -> None:
    csv = write_csv(tmp_path / "t.csv", "f1,f2,f3,label,city", table_rows(40))
    path = write_run_config(
        tmp_path,
        "data.dataset=csv",
        f"data.path={csv}",
        "canary.enabled=false",
        "federation.num_clients=4",
    )
    assert main(["check", str(path)]) == 0
    assert "data: inputs shaped (3,), 3 classes; 4 clients" in capsys.readouterr().out
    assert main(["check", str(path), "--set", "model.name=cnn"]) == 2
    err = capsys.readouterr().err
    assert "model.name = 'cnn' cannot build a model for inputs shaped (3,)" in err
    assert "the cnn model needs images" in err
    assert main(["check", str(path), "--set", "model.name=my_lab.nowhere:net"]) == 2
    assert "cannot import module 'my_lab.nowhere'" in capsys.readouterr().err
    assert main(["check", str(path), "--set", "data.label=city"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "holds non-numeric labels (text)" in err
    assert main(["check", str(path), "--set", "data.path=" + str(tmp_path / "gone.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    over = ["--set", "data.partition=natural", "--set", "data.partition_by=city"]
    assert main(["check", str(path), *over]) == 2
    assert "has 2 distinct values" in capsys.readouterr().err


# ------------------------------------------------------------------ the docs


def test_every_toml_example_in_the_datasets_page_is_a_valid_config(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 8
    for block in blocks:
        raw = tomllib.loads(block)
        if "path" in raw.get("data", {}):
            raw["data"]["path"] = str(tmp_path / "data")
        ExperimentConfig.from_dict(raw)


def test_the_model_factory_example_builds_a_model_by_dotted_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = re.findall(r"```python\n(# my_lab/models.py.*?)```", DOCS.read_text(), re.S)
    (tmp_path / "my_lab").mkdir()
    (tmp_path / "my_lab" / "__init__.py").write_text("")
    (tmp_path / "my_lab" / "models.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("my_lab", "my_lab.models"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    model = build_model("my_lab.models:make_net", (1, 8, 8), 3, hidden=16, seed=0)
    for name in ("my_lab", "my_lab.models"):  # leave no my_lab behind for other tests
        sys.modules.pop(name, None)
    import torch

    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
