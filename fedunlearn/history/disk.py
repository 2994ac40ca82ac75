"""An update history in a folder: :class:`DiskHistory`.

The folder holds one file per kept round, named by its round (``round-00003.npz``; keys
``global::<name>`` and ``update::<client>::<name>``), ``final.npz`` once training
ends, and ``index.json``: format, version, ``delta_t``, parameter keys, storage
options, participation of every round, and per kept round its file, sampled clients,
example counts and byte counts. Every file is
written to a ``.tmp`` sibling and renamed into place, so an interrupted run leaves the
rounds it finished readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.history.base import UpdateHistory
from fedunlearn.history.kept import FORMAT, VERSION, HistoryError, KeptRound, round_problem
from fedunlearn.learning.arrays import Arrays, nbytes


class DiskHistory(UpdateHistory):
    """Client updates kept every ``delta_t`` rounds, written to a folder as they come.

    Parameters
    ----------
    path : str or Path
        Folder for the history (created if needed). An existing history in the folder
        is refused; open it with :meth:`open` instead.
    delta_t : int
        Keep rounds ``1, 1 + delta_t, 1 + 2 delta_t, ...`` (FedEraser's interval).
    parameter_keys : sequence of str, optional
        Names of the trainable parameters. Norms and distances use only these, so
        buffers such as BatchNorm running statistics never enter them.
    precision : {"full", "float16"}
        The dtype client updates are kept in (see :class:`UpdateHistory`).
    compress : bool
        Deflate each round's file (``np.savez_compressed``): fewer bytes, slower writes.

    Raises
    ------
    HistoryError
        If ``path`` already holds a history.
    """

    def __init__(
        self,
        path: str | Path,
        delta_t: int = 1,
        parameter_keys: Sequence[str] | None = None,
        precision: str = "full",
        compress: bool = False,
    ) -> None:
        super().__init__(delta_t, parameter_keys, precision)
        self.compress = bool(compress)
        self.path = Path(path)
        self._index: dict[int, dict[str, Any]] = {}  # round -> index entry
        if (self.path / "index.json").exists():
            raise HistoryError(
                f"{self.path} already holds a history; open it with "
                "UpdateHistory.open(path) or choose another folder"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self._persist()

    @classmethod
    def open(cls, path: str | Path) -> DiskHistory:
        """Open a history written to disk; check it is complete and readable.

        Parameters
        ----------
        path : str or Path
            The folder a disk history was written to.

        Returns
        -------
        DiskHistory
            The history; rounds are read from disk when asked for.

        Raises
        ------
        HistoryError
            If ``index.json`` is missing or corrupt, or a round file it lists is missing.
        """
        folder = Path(path)
        index_file = folder / "index.json"
        if not index_file.is_file():
            raise HistoryError(
                f"no history at {folder}: {index_file.name} is missing. Point to the "
                "folder a run wrote with history.storage = 'disk'."
            )
        try:
            index = json.loads(index_file.read_text())
            if index.get("format") != FORMAT:
                raise ValueError(f"format is {index.get('format')!r}, not {FORMAT!r}")
            if index.get("version") != VERSION:
                raise ValueError(f"version {index.get('version')} is not {VERSION}")
            history = cls.__new__(cls)
            UpdateHistory.__init__(
                history,
                int(index["delta_t"]),
                index["parameter_keys"],
                index.get("precision", "full"),  # written before storage options
            )
            history.compress = bool(index.get("compress", False))
            history.path = folder
            history._participation = {
                int(r): tuple(int(c) for c in s) for r, s in index["participation"].items()
            }
            history._index = {int(r): e for r, e in index["rounds"].items()}
            history.meta = dict(index.get("meta", {}))
        except (ValueError, KeyError, TypeError) as err:
            raise HistoryError(
                f"history index {index_file} is corrupt ({err}). Re-run training to "
                "rebuild the history; nothing was changed on disk."
            ) from err
        missing = [e["file"] for e in history._index.values() if not (folder / e["file"]).is_file()]
        if missing:
            raise HistoryError(
                f"history at {folder} lists files that are missing: {missing}. "
                "Re-run training to rebuild it."
            )
        return history

    def disk_bytes(self) -> int:
        """Bytes the history takes on disk."""
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    # ------------------------------------------------------------------ store hooks
    def _store_round(self, kept: KeptRound) -> None:
        file = f"round-{kept.round:05d}.npz"
        payload = {f"global::{k}": v for k, v in kept.global_model.items()}
        for c, update in kept.updates.items():
            payload.update({f"update::{c}::{k}": v for k, v in update.items()})
        _atomic_savez(self.path / file, payload, self.compress)
        self._index[kept.round] = {
            "file": file,
            "sha256": _sha256(self.path / file),
            "sampled": list(kept.sampled),
            "num_examples": {str(c): n for c, n in kept.num_examples.items()},
            "nbytes": kept.nbytes,
            "global_nbytes": nbytes(kept.global_model),
        }

    def _load_round(self, server_round: int) -> KeptRound:
        entry = self._index[server_round]
        _check_sum(self.path / entry["file"], entry.get("sha256"))
        payload = _read_npz(self.path / entry["file"])
        global_model: Arrays = {}
        updates: dict[int, Arrays] = {}
        for key, value in payload.items():
            kind, _, rest = key.partition("::")
            if kind == "global":
                global_model[rest] = value
            elif kind == "update":
                client, _, name = rest.partition("::")
                updates.setdefault(int(client), {})[name] = value
        num_examples = {int(c): int(n) for c, n in entry["num_examples"].items()}
        if set(updates) != set(num_examples) or not global_model:
            raise HistoryError(
                f"history file {self.path / entry['file']} does not match the index "
                f"(clients {sorted(updates)} vs {sorted(num_examples)}); re-run training"
            )
        kept = KeptRound(server_round, global_model, updates, num_examples, tuple(entry["sampled"]))
        problem = round_problem(kept)
        if problem:
            raise HistoryError(
                f"history file {self.path / entry['file']}: {problem}; re-run training"
            )
        return kept

    def _kept_ids(self) -> Collection[int]:
        return self._index.keys()

    def _round_bytes(self, server_round: int) -> int:
        return int(self._index[server_round]["nbytes"])

    def _global_bytes(self, server_round: int) -> int:
        return int(self._index[server_round]["global_nbytes"])

    def _persist(self) -> None:
        index = {
            "format": FORMAT,
            "version": VERSION,
            "delta_t": self.delta_t,
            "parameter_keys": self.parameter_keys,
            "precision": self.precision,
            "compress": self.compress,
            "participation": {str(r): list(s) for r, s in sorted(self._participation.items())},
            "rounds": {str(r): e for r, e in sorted(self._index.items())},
            "meta": self.meta,
        }
        tmp = self.path / "index.json.tmp"
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, self.path / "index.json")

    def _store_final(self, arrays: Arrays) -> None:
        _atomic_savez(self.path / "final.npz", arrays)
        self.meta["final_sha256"] = _sha256(self.path / "final.npz")

    def _load_final(self) -> Arrays | None:
        file = self.path / "final.npz"
        if not file.exists():
            return None
        _check_sum(file, self.meta.get("final_sha256"))
        return _read_npz(file)


def copy_to_disk(history: UpdateHistory, path: str | Path) -> DiskHistory:
    """A new disk history at ``path`` holding what ``history`` holds: its rounds,
    participation, final model, meta and storage options."""
    compress = getattr(history, "compress", False)
    copy = DiskHistory(path, history.delta_t, history.parameter_keys, history.precision, compress)
    copy.describe_training(**history.meta)
    for r, sampled in history.participation.items():
        if r in history:
            kept = history[r]
            copy.record(r, kept.global_model, kept.updates, kept.num_examples, kept.sampled)
        else:
            copy.record_participation(r, sampled)
    if history.has_final_model:
        copy.set_final_model(history.final_model)
    return copy


def _atomic_savez(file: Path, arrays: Mapping[str, np.ndarray], compress: bool = False) -> None:
    tmp = file.with_name(file.name + ".tmp")
    save = np.savez_compressed if compress else np.savez
    with open(tmp, "wb") as handle:
        save(handle, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, file)


def _read_npz(file: Path) -> Arrays:
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise HistoryError(
            f"history file {file} is unreadable ({type(err).__name__}: {err}); it was "
            "cut short or modified. Re-run training to rebuild the history."
        ) from err


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sum(file: Path, expected: str | None) -> None:
    """HistoryError when ``file`` is not what was written (histories written before
    checksums were kept have none to check)."""
    if expected is not None and file.is_file() and _sha256(file) != expected:
        raise HistoryError(
            f"history file {file} was changed after it was written (its checksum does not "
            "match the index); re-run training to rebuild the history"
        )
