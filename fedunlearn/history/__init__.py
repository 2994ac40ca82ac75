"""The server's memory of training: the update history, in memory or on disk.

Owns: :class:`~.base.UpdateHistory` (one interface) and its two stores,
:class:`~.memory.MemoryHistory` and :class:`~.disk.DiskHistory`; :func:`new_history`
picks one.

Modules: ``base`` (the interface: what is kept and why), ``kept`` (:class:`KeptRound`,
:class:`HistoryError` and the checks a kept round or a history must pass), ``meta``
(what the history says of how training ran), ``participation`` (who was sampled
when), ``store`` (the hooks a store
implements), ``memory`` (the memory store), ``disk``
(the disk store and its format).

May import: :mod:`fedunlearn.learning` (arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fedunlearn.history.base import UpdateHistory
from fedunlearn.history.disk import DiskHistory
from fedunlearn.history.kept import HistoryError, KeptRound
from fedunlearn.history.memory import MemoryHistory

__all__ = [
    "DiskHistory",
    "HistoryError",
    "KeptRound",
    "MemoryHistory",
    "UpdateHistory",
    "new_history",
]


def new_history(
    delta_t: int = 1,
    path: str | Path | None = None,
    parameter_keys: Sequence[str] | None = None,
    precision: str = "full",
    compress: bool = False,
) -> UpdateHistory:
    """An empty history: in memory, or in the folder ``path``.

    Parameters
    ----------
    delta_t : int
        Keep rounds ``1, 1 + delta_t, 1 + 2 delta_t, ...`` (FedEraser's interval).
    path : str or Path, optional
        Folder for a :class:`DiskHistory`; ``None`` gives a :class:`MemoryHistory`.
    parameter_keys : sequence of str, optional
        Names of the trainable parameters (norms and distances use only these).
    precision : {"full", "float16"}
        The dtype client updates are kept in (``"float16"``: half of float32's bytes).
    compress : bool
        Deflate each round's file (disk histories only).

    Returns
    -------
    UpdateHistory
        A :class:`MemoryHistory` or a :class:`DiskHistory`.

    Raises
    ------
    HistoryError
        If ``path`` already holds a history.
    """
    if path is None:
        if compress:
            raise ValueError("compress applies to disk histories: give a path")
        return MemoryHistory(delta_t, parameter_keys, precision)
    return DiskHistory(path, delta_t, parameter_keys, precision, compress)
