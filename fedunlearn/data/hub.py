"""Read one split of a dataset with Hugging Face ``datasets``, without the network.

Which reader each ``data.dataset`` kind uses:

* ``disk``: ``datasets.load_from_disk(path)``, a folder written by
  ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``;
* ``csv``, ``parquet``, ``json``: ``datasets.load_dataset(<kind>, data_files=...)`` on a
  file, a glob, or every such file under a folder (files named after a split, such as
  ``train.csv`` and ``test.csv``, become those splits);
* ``imagefolder``: ``datasets.load_dataset("imagefolder", data_dir=path)``
  (``<label>/<image>`` or ``<split>/<label>/<image>``);
* ``hf:<name>``: ``datasets.load_dataset(<name>)`` from the Hugging Face Hub, which needs
  the network (or the name in the local cache).

Whatever fails becomes a :class:`~fedunlearn.data.datasets.DataError` naming the file or
folder and the reason.
"""

from __future__ import annotations

import contextlib
import glob
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fedunlearn.config.dataset import DataConfig
from fedunlearn.data.datasets import DataError, DataNotFoundError

if TYPE_CHECKING:
    import datasets

FILE_EXTENSIONS = {
    "csv": (".csv",),
    "parquet": (".parquet",),
    "json": (".json", ".jsonl"),
}
"""The files a folder given to each tabular kind is searched for."""

_GENERIC = ("An error occurred while generating the dataset",)
"""Messages that say nothing; the reason is in the exception they wrap."""


def read_split(config: DataConfig) -> tuple[datasets.Dataset, str]:
    """The split of the data ``config`` names, and how to name it in messages.

    Parameters
    ----------
    config : DataConfig
        ``dataset`` (any kind but the built-ins and ``npz``), ``path`` and ``split``.

    Returns
    -------
    tuple of (datasets.Dataset, str)
        The rows of the split, and e.g. ``"/data/writers (split 'train')"``.
    """

    with quiet_datasets():
        return _read_split(config)


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Hugging Face ``datasets`` without its progress bars (they would interleave with
    a run's own), restored afterwards."""
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            datasets.enable_progress_bars()


def _read_split(config: DataConfig) -> tuple[datasets.Dataset, str]:
    import datasets

    kind = config.dataset
    if config.hub_name:
        data = _from_hub(config.hub_name, config.split)
        source = kind
    else:
        path = Path(config.path).expanduser()
        source = str(path)
        if kind == "disk":
            data = _from_disk(path)
        elif kind == "imagefolder":
            data = _from_image_folder(path)
        elif kind in FILE_EXTENSIONS:
            data = _from_files(kind, config.path)
        else:
            raise DataError(f"data.dataset = {kind!r} is not read with Hugging Face datasets")
    if isinstance(data, datasets.DatasetDict):
        split = _pick_split(list(data), config.split, source)
        table = data[split]
    else:
        table, split = data, str(data.split or "")
        if config.split and config.split != split:
            held = f"the split {split!r}" if split else "without splits"
            raise DataError(
                f"data.split = {config.split!r}, but {source} holds one dataset, {held}; "
                "leave data.split empty"
            )
    where = f"{source} (split {split!r})" if split else source
    if table.num_rows == 0:
        raise DataError(f"{where} is empty: it has no rows")
    return table, where


def _pick_split(splits: list[str], wanted: str, source: str) -> str:
    """``wanted``, else ``"train"``, else the only split; an error listing them else."""
    if wanted:
        if wanted not in splits:
            raise DataError(
                f"data.split = {wanted!r} is not a split of {source}; its splits: "
                f"{', '.join(splits)}"
            )
        return wanted
    if "train" in splits:
        return "train"
    if len(splits) == 1:
        return splits[0]
    raise DataError(
        f"{source} has the splits {', '.join(splits)} and none is 'train'; set data.split "
        "to one of them"
    )


def _from_disk(path: Path) -> datasets.Dataset | datasets.DatasetDict:
    import datasets

    if not path.exists():
        raise DataNotFoundError(f"data.path {str(path)!r} does not exist")
    if not path.is_dir():
        raise DataError(
            f"data.path {str(path)!r} is a file; data.dataset = 'disk' reads a folder written "
            "by Dataset.save_to_disk or DatasetDict.save_to_disk"
        )
    try:
        return datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(
            f"{path} is not a folder written by save_to_disk (it has no dataset_info.json "
            "and state.json, nor dataset_dict.json); write it with "
            "Dataset.save_to_disk or DatasetDict.save_to_disk"
        ) from err
    except Exception as err:
        if _saved_without_rows(path):  # load_from_disk fails on zero shards
            raise DataError(f"{path} is empty: it has no rows") from err
        raise DataError(f"cannot read the saved dataset {path}: {_reason(err)}") from err


def _saved_without_rows(path: Path) -> bool:
    """Whether a ``save_to_disk`` folder (or one of its splits) lists no data files."""
    for state in [path / "state.json", *path.glob("*/state.json")]:
        try:
            if not json.loads(state.read_text()).get("_data_files"):
                return True
        except (OSError, ValueError):
            continue
    return False


def _from_image_folder(path: Path) -> datasets.DatasetDict:
    if not path.exists():
        raise DataNotFoundError(f"data.path {str(path)!r} does not exist")
    if not path.is_dir():
        raise DataError(
            f"data.path {str(path)!r} is a file; data.dataset = 'imagefolder' reads a folder "
            "of <label>/<image> (or <split>/<label>/<image>) files"
        )
    return _load("imagefolder", str(path), data_dir=str(path))


def _from_files(kind: str, path: str) -> datasets.DatasetDict:
    """``csv``, ``parquet`` or ``json`` data from a file, a glob or a folder."""
    expanded = str(Path(path).expanduser())
    if glob.has_magic(expanded):
        if not any(Path(p).is_file() for p in glob.glob(expanded, recursive=True)):
            raise DataNotFoundError(f"data.path {path!r} matches no file")
        return _load(kind, path, data_files=expanded)
    target = Path(expanded)
    if not target.exists():
        raise DataNotFoundError(f"data.path {path!r} does not exist")
    if target.is_file():
        return _load(kind, str(target), data_files=str(target))
    return _load(kind, str(target), data_files=_folder_files(kind, target))


def _folder_files(kind: str, folder: Path) -> dict[str, list[str]]:
    """Every ``kind`` file under ``folder`` by split, as ``datasets`` names splits
    (``train*``, ``test*``, ``validation*``...; all of them ``train`` otherwise)."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    extensions = list(FILE_EXTENSIONS[kind])
    try:
        found = DataFilesDict.from_patterns(
            get_data_patterns(str(folder)), base_path=str(folder), allowed_extensions=extensions
        )
    except FileNotFoundError:
        found = DataFilesDict()
    files = {str(split): [str(f) for f in names] for split, names in found.items() if names}
    if not files:
        raise DataError(f"folder {folder} holds no {' or '.join(extensions)} files")
    return files


def _load(kind: str, where: str, **kwargs: object) -> datasets.DatasetDict:
    """``datasets.load_dataset(kind, **kwargs)`` with its failures as one DataError."""
    import datasets

    try:
        return datasets.load_dataset(kind, **kwargs)  # type: ignore[arg-type]
    except Exception as err:
        reason = _reason(err)
        if "corresponds to no data" in reason:
            raise DataError(f"{where} is empty: it has no rows") from err
        raise DataError(f"cannot read {where} as {kind}: {reason}") from err


def _from_hub(name: str, split: str) -> datasets.Dataset | datasets.DatasetDict:
    import datasets

    try:
        return datasets.load_dataset(name, split=split or None)
    except Exception as err:
        raise DataError(
            f"cannot load {name!r} from the Hugging Face Hub: {_reason(err)}. Without the "
            "network, download it on a machine that has it: "
            f"datasets.load_dataset({name!r}).save_to_disk('<folder>'); copy the folder "
            "here and set data.dataset = 'disk' and data.path = '<folder>' "
            "(docs/datasets.md)"
        ) from err


def _reason(err: BaseException) -> str:
    """The first informative message along ``err``'s chain of causes, shortened."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        lines = [
            line.strip()
            for line in str(item).splitlines()
            if line.strip() and not line.strip().startswith(_GENERIC)
        ]
        if lines:
            break
    else:
        lines = [type(chain[-1]).__name__]
    short = " ".join(lines[:3])
    return short if len(short) <= 400 else short[:397] + "..."
