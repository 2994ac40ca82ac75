"""The NumPy archives a run leaves behind (``attack_scores.npz``, ``references.npz``,
``dp_audit.npz``, ``models.npz``, kept reference federations): written whole or not at
all, read back without pickles and with their format checked.

Each file's layout is documented by the module that owns it; this one only makes sure
an interrupted write never leaves a half file under the final name, and that a reader
gets one error type, naming the file, whatever is wrong with it.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["ArchiveError", "read_archive", "write_archive"]


class ArchiveError(ValueError):
    """An archive is missing, unreadable, or not of the format asked for; the message
    names the file."""


def write_archive(path: Path, arrays: Mapping[str, np.ndarray], compress: bool = True) -> Path:
    """Write ``arrays`` to ``path`` as an ``.npz`` through a temporary file renamed into
    place, so readers see the old file or the new one, never a part.

    Parameters
    ----------
    path : Path
        The archive's final name.
    arrays : mapping of str to np.ndarray
        Its arrays by key.
    compress : bool, default True
        ``np.savez_compressed`` (scores, ids) or ``np.savez`` (weights, which barely
        compress).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save = np.savez_compressed if compress else np.savez
    with open(tmp, "wb") as handle:
        save(handle, **arrays)
    os.replace(tmp, path)
    return path


def read_archive(path: str | Path, name: str, fmt: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of an archive written by :func:`write_archive`.

    Parameters
    ----------
    path : str or Path
        The file, or the folder holding it under ``name``.
    name : str
        Its file name in a folder (``references.npz``).
    fmt : str, optional
        The format its ``format`` array must hold (None: not checked).

    Raises
    ------
    ArchiveError
        The file is missing or unreadable, or its ``format`` is not ``fmt``.
    """
    file = Path(path)
    if file.is_dir():
        file = file / name
    if not file.is_file():
        raise ArchiveError(f"{file} does not exist")
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ArchiveError(f"{file} is not a readable archive: {err}") from err
    if fmt is not None and str(arrays.get("format")) != fmt:
        raise ArchiveError(
            f"{file} is not a {fmt} archive (its format: {arrays.get('format', 'none')})"
        )
    return arrays
