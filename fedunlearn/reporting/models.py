"""``models.npz``: the final weights of every model of a run, so its audits can be redone
without training (``fedunlearn audit RUN_DIR``).

Layout (NumPy ``.npz``, no pickled objects): one array per model and parameter, keyed
``<label>/<param>``, where ``<label>`` is ``original``, a method's label or the
reference's, and ``<param>`` a name of the model's ``state_dict`` (``net.0.weight``);
each model's parameters in ``state_dict`` order, dtypes as trained. Read it back with
:func:`read_models` (or ``np.load``: split each key at its last ``/``, parameter names
never hold one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fedunlearn.archives import ArchiveError, read_archive, write_archive
from fedunlearn.reporting.folder import RunFolderError

FILE = "models.npz"


class ModelsFileError(RunFolderError):
    """``models.npz`` is missing, unreadable or not laid out as :mod:`this module
    <fedunlearn.reporting.models>` says; the message names the file."""


def write_models(models: Mapping[str, Mapping[str, np.ndarray]], run_dir: Path) -> Path:
    """Write ``models.npz`` whole (a temporary file renamed); return its path.

    Parameters
    ----------
    models : mapping of str to mapping of str to np.ndarray
        Weights by model label, each a parameter name to array mapping.
    run_dir : Path
        The run folder.
    """
    arrays: dict[str, np.ndarray] = {}
    for label, weights in models.items():
        if not label:
            raise ValueError(f"an empty model label cannot be written to {FILE}")
        for name, value in weights.items():
            if "/" in name:
                raise ValueError(f"parameter {name!r} of {label!r}: names must not hold '/'")
            arrays[f"{label}/{name}"] = np.asarray(value)
    return write_archive(Path(run_dir) / FILE, arrays, compress=False)


def read_models(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read ``models.npz`` (or the run folder that holds it): weights by model label.

    Raises
    ------
    ModelsFileError
        The file is missing, is not an ``.npz`` archive, or holds a key that is not
        ``<label>/<param>``.
    """
    file = Path(path)
    if file.is_dir():
        file = file / FILE
    if not file.is_file():
        raise ModelsFileError(
            f"{file} does not exist: the run has no saved models (runs written before "
            f"{FILE} existed, or that stopped before the report, cannot be re-audited)"
        )
    try:
        arrays = read_archive(file, FILE)
    except ArchiveError as err:
        raise ModelsFileError(f"{err} (a models archive)") from err
    models: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        label, sep, name = key.rpartition("/")
        if not sep or not label or not name:
            raise ModelsFileError(f"{file}: key {key!r} is not '<label>/<param>'")
        models.setdefault(label, {})[name] = value
    if not models:
        raise ModelsFileError(f"{file} holds no model")
    return models
