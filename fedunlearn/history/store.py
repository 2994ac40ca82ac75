"""The server's memory of training: the ``UpdateHistory``.

In federated unlearning the server never sees client data; all it can unlearn from is
what it kept while training. For every kept round (1, 1 + delta_t, 1 + 2 delta_t, ...)
the history stores:

* the global model the round *started* from;
* each participating client's update: its weights after local training minus that
  starting global model (not minus the aggregated model, a known mistake);
* each client's example count;
* the clients sampled in the round.

Clients are keyed by a stable client id (the partition id), never by Flower's random
node id. Participation is recorded for *every* round (it is cheap) so methods such as
exact rollback know when a client first took part.

The history lives in memory or on disk (one ``.npz`` per kept round and an
``index.json``; each write is atomic, so an interrupted run leaves the rounds it
finished readable)::

    history = UpdateHistory(delta_t=2, path="runs/h")   # on disk
    history.record(1, global_model, {0: update0, 1: update1}, {0: 120, 1: 80}, [0, 1])
    again = UpdateHistory.open("runs/h")
    again[1].updates[0]   # the update of client 0 in round 1
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedunlearn.learning.arrays import Arrays, nbytes

FORMAT = "fedunlearn-history"
VERSION = 1


class HistoryError(RuntimeError):
    """A history on disk is missing, corrupt, or does not fit what is asked of it."""


@dataclass(frozen=True)
class KeptRound:
    """Everything the server kept about one training round."""

    round: int
    global_model: Arrays
    updates: dict[int, Arrays]
    num_examples: dict[int, int]
    sampled: tuple[int, ...]
    clients: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if set(self.updates) != set(self.num_examples):
            raise ValueError("updates and num_examples must name the same clients")
        object.__setattr__(self, "clients", tuple(sorted(self.updates)))

    @property
    def nbytes(self) -> int:
        """Bytes of array data in this round."""
        return nbytes(self.global_model) + sum(nbytes(u) for u in self.updates.values())


class UpdateHistory:
    """Client updates kept every ``delta_t`` rounds, in memory or on disk.

    Parameters
    ----------
    delta_t : int
        Keep rounds ``1, 1 + delta_t, 1 + 2 delta_t, ...`` (FedEraser's interval).
    path : str or Path, optional
        Folder for a disk history. ``None`` keeps everything in memory. An existing
        history in the folder is refused; open it with :meth:`open` instead.
    parameter_keys : sequence of str, optional
        Names of the trainable parameters. Norms and distances use only these, so
        buffers such as BatchNorm running statistics never enter them.
    """

    def __init__(
        self,
        delta_t: int = 1,
        path: str | Path | None = None,
        parameter_keys: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(delta_t, int) or delta_t < 1:
            raise ValueError(f"delta_t must be a positive integer, got {delta_t!r}")
        self.delta_t = delta_t
        self.parameter_keys: list[str] | None = (
            list(parameter_keys) if parameter_keys is not None else None
        )
        self.path = Path(path) if path is not None else None
        self._rounds: dict[int, KeptRound] = {}  # memory store
        self._index: dict[int, dict] = {}  # disk store: round -> index entry
        self._participation: dict[int, tuple[int, ...]] = {}
        self._final: Arrays | None = None
        if self.path is not None:
            if (self.path / "index.json").exists():
                raise HistoryError(
                    f"{self.path} already holds a history; open it with "
                    "UpdateHistory.open(path) or choose another folder"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_index()

    # ------------------------------------------------------------------ writing
    def keeps(self, server_round: int) -> bool:
        """Whether round ``server_round`` (1-based) is a kept round."""
        return server_round >= 1 and (server_round - 1) % self.delta_t == 0

    def record_participation(self, server_round: int, sampled: Sequence[int]) -> None:
        """Note which clients were sampled in a round (every round, kept or not)."""
        self._participation[server_round] = tuple(sorted(int(c) for c in sampled))
        if self.path is not None:
            self._write_index()

    def record(
        self,
        server_round: int,
        global_model: Mapping[str, np.ndarray],
        updates: Mapping[int, Mapping[str, np.ndarray]],
        num_examples: Mapping[int, int],
        sampled: Sequence[int],
    ) -> bool:
        """Record a round; store its arrays only if it is a kept round.

        Returns whether the arrays were stored.
        """
        if server_round in self._participation and server_round in self.rounds:
            raise HistoryError(f"round {server_round} is already recorded")
        self._participation[server_round] = tuple(sorted(int(c) for c in sampled))
        if not self.keeps(server_round):
            if self.path is not None:
                self._write_index()
            return False
        kept = KeptRound(
            round=server_round,
            global_model={k: np.array(v, copy=True) for k, v in global_model.items()},
            updates={
                int(c): {k: np.array(v, copy=True) for k, v in u.items()}
                for c, u in updates.items()
            },
            num_examples={int(c): int(n) for c, n in num_examples.items()},
            sampled=tuple(sorted(int(c) for c in sampled)),
        )
        if self.path is None:
            self._rounds[server_round] = kept
        else:
            self._write_round(kept)
        return True

    def set_final_model(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Keep the global model at the end of training."""
        self._final = {k: np.array(v, copy=True) for k, v in arrays.items()}
        if self.path is not None:
            _atomic_savez(self.path / "final.npz", self._final)
            self._write_index()

    # ------------------------------------------------------------------ reading
    @property
    def rounds(self) -> list[int]:
        """Kept rounds, ascending."""
        return sorted(self._rounds if self.path is None else self._index)

    @property
    def participation(self) -> dict[int, tuple[int, ...]]:
        """Clients sampled in each recorded round (all rounds, kept or not)."""
        return dict(sorted(self._participation.items()))

    @property
    def num_rounds(self) -> int:
        """Number of rounds recorded (kept or not)."""
        return max(self._participation, default=0)

    @property
    def clients(self) -> list[int]:
        """Every client that took part in some round."""
        return sorted({c for s in self._participation.values() for c in s})

    @property
    def final_model(self) -> Arrays:
        """The global model at the end of training."""
        if self._final is None:
            if self.path is not None and (self.path / "final.npz").exists():
                self._final = _read_npz(self.path / "final.npz")
            else:
                raise HistoryError("the history holds no final model")
        return self._final

    @property
    def initial_model(self) -> Arrays:
        """The global model training started from (round 1 is always kept)."""
        if 1 not in self:
            raise HistoryError("round 1 is not in the history")
        return self[1].global_model

    def first_participation(self, client: int) -> int | None:
        """The first round ``client`` was sampled in, or None."""
        return next((r for r, s in sorted(self._participation.items()) if client in s), None)

    def __contains__(self, server_round: object) -> bool:
        return server_round in (self._rounds if self.path is None else self._index)

    def __len__(self) -> int:
        return len(self.rounds)

    def __iter__(self) -> Iterator[KeptRound]:
        for r in self.rounds:
            yield self[r]

    def __getitem__(self, server_round: int) -> KeptRound:
        if server_round not in self:
            raise KeyError(
                f"round {server_round} is not kept (kept rounds: {self.rounds}; "
                f"delta_t = {self.delta_t})"
            )
        if self.path is None:
            return self._rounds[server_round]
        return self._read_round(server_round)

    @property
    def nbytes(self) -> int:
        """Bytes of array data held: kept global models and client updates."""
        if self.path is None:
            return sum(r.nbytes for r in self._rounds.values())
        return sum(int(e["nbytes"]) for e in self._index.values())

    def bytes_of(self, *, global_models: bool = True, updates: bool = True) -> int:
        """Bytes of the kept global models and/or the kept client updates.

        Methods report what they need the server to keep: exact rollback needs only
        the global models, FedEraser the updates (and the initial model).
        """
        if self.path is None:
            g = sum(nbytes(r.global_model) for r in self._rounds.values())
        else:
            g = sum(int(e["global_nbytes"]) for e in self._index.values())
        return (g if global_models else 0) + (self.nbytes - g if updates else 0)

    def disk_bytes(self) -> int:
        """Bytes the history takes on disk (0 in memory)."""
        if self.path is None:
            return 0
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def save(self, path: str | Path) -> UpdateHistory:
        """Copy this history into a new disk history at ``path`` and return it."""
        copy = UpdateHistory(self.delta_t, path, self.parameter_keys)
        for r in sorted(self._participation):
            if r in self:
                kept = self[r]
                copy.record(r, kept.global_model, kept.updates, kept.num_examples, kept.sampled)
            else:
                copy.record_participation(r, self._participation[r])
        if self._final is not None or (self.path and (self.path / "final.npz").exists()):
            copy.set_final_model(self.final_model)
        return copy

    # ------------------------------------------------------------------ disk format
    @classmethod
    def open(cls, path: str | Path) -> UpdateHistory:
        """Open a history written to disk; check it is complete and readable."""
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
            history.delta_t = int(index["delta_t"])
            history.parameter_keys = index["parameter_keys"]
            history.path = folder
            history._rounds = {}
            history._final = None
            history._participation = {
                int(r): tuple(int(c) for c in s) for r, s in index["participation"].items()
            }
            history._index = {int(r): e for r, e in index["rounds"].items()}
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

    def _write_index(self) -> None:
        assert self.path is not None
        index = {
            "format": FORMAT,
            "version": VERSION,
            "delta_t": self.delta_t,
            "parameter_keys": self.parameter_keys,
            "participation": {str(r): list(s) for r, s in sorted(self._participation.items())},
            "rounds": {str(r): e for r, e in sorted(self._index.items())},
        }
        tmp = self.path / "index.json.tmp"
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, self.path / "index.json")

    def _write_round(self, kept: KeptRound) -> None:
        assert self.path is not None
        file = f"round-{kept.round:05d}.npz"
        payload = {f"global::{k}": v for k, v in kept.global_model.items()}
        for c, update in kept.updates.items():
            payload.update({f"update::{c}::{k}": v for k, v in update.items()})
        _atomic_savez(self.path / file, payload)
        self._index[kept.round] = {
            "file": file,
            "sampled": list(kept.sampled),
            "num_examples": {str(c): n for c, n in kept.num_examples.items()},
            "nbytes": kept.nbytes,
            "global_nbytes": nbytes(kept.global_model),
        }
        self._write_index()

    def _read_round(self, server_round: int) -> KeptRound:
        assert self.path is not None
        entry = self._index[server_round]
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
        return KeptRound(server_round, global_model, updates, num_examples, tuple(entry["sampled"]))


def _atomic_savez(file: Path, arrays: Mapping[str, np.ndarray]) -> None:
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})
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
