"""Reference federations kept for reuse across runs (``[audit] references``).

A reference federation depends on its run only through
:func:`~fedunlearn.federation.references.reference_config`: the run's config with a
seed drawn from the *world* seed and the reference's index. Runs on one world that
differ only in their own training seed (a study's seeds with ``data.seed`` fixed, or
the same run again) therefore have the same references, and train them once: the
first run keeps each reference's final models here, the others load them and ask them
about their own candidates.

The store is the folder ``.references`` beside the run folders
(``results/.references`` for ``fedunlearn run``, ``<sweep>/runs/.references`` for a
sweep); one file per reference, named by the digest of its full config
(:func:`~fedunlearn.config.identity.config_hash`), so a reference of any other config
is never mistaken for it. Delete the folder to train them again (after changing
fedunlearn's training code, say). A file that cannot be read is trained again and
overwritten, with a note.

Layout of ``<config hash>.npz`` (no pickles):

===========================  =======  ===============================================
key                          dtype    what
===========================  =======  ===============================================
``format``                   str      ``fedunlearn.reference_federation/1``
``config_hash``              str      the reference's config digest (its file name)
``config``                   str      the reference's config as TOML, to read
``labels``                   str      its models: ``original``, the retrained one, the
                                      methods that did not fail
``held/record_id``           int64    records its clients trained on
``forgotten/record_id``      int64    records of those it was asked to forget
``model/<j>/<param>``        float    parameter ``<param>`` (``state_dict`` name) of
                                      model ``labels[j]``, in ``state_dict`` order
===========================  =======  ===============================================
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedunlearn.archives import ArchiveError, read_archive, write_archive
from fedunlearn.config import ExperimentConfig
from fedunlearn.config.identity import config_hash
from fedunlearn.learning.arrays import Arrays

__all__ = ["FOLDER", "FORMAT", "ReferenceStore", "TrainedReference"]

FORMAT = "fedunlearn.reference_federation/1"
FOLDER = ".references"


@dataclass(frozen=True)
class TrainedReference:
    """What a reference federation leaves for the calibrated attacks.

    Parameters
    ----------
    models : dict of str to Arrays
        Final weights of every model it produced, by label.
    held : np.ndarray
        Ids of the records its clients trained on.
    forgotten : np.ndarray
        Ids of the records (of those) it forgot.
    """

    models: dict[str, Arrays]
    held: np.ndarray
    forgotten: np.ndarray

    def trained_on(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each record id: (trained on by the original, by the retrained model,
        trained on and forgotten)."""
        held = np.isin(ids, self.held)
        gone = np.isin(ids, self.forgotten)
        return held, held & ~gone, held & gone


class ReferenceStore:
    """Trained reference federations on disk, by config.

    Parameters
    ----------
    folder : Path
        Where they are kept (created on the first save).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def beside(cls, run_dir: Path) -> ReferenceStore:
        """The store shared by the run folders next to ``run_dir``."""
        return cls(Path(run_dir).parent / FOLDER)

    def path(self, config: ExperimentConfig) -> Path:
        """The file of the reference federation with config ``config``."""
        return self._file(config_hash(config))

    def _file(self, digest: str) -> Path:
        return self.folder / f"{digest}.npz"

    def load(self, config: ExperimentConfig) -> TrainedReference | None:
        """The kept reference with config ``config``, or None (never trained, or its
        file is unreadable: it is trained again)."""
        digest = config_hash(config)
        path = self._file(digest)
        if not path.is_file():
            return None
        try:
            arrays = read_archive(path, path.name, FORMAT)
            if str(arrays["config_hash"]) != digest:
                raise ArchiveError(f"{path} holds another config's reference")
            labels = [str(label) for label in arrays["labels"]]
            models: dict[str, Arrays] = {label: {} for label in labels}
            for key, value in arrays.items():
                if key.startswith("model/"):
                    _, j, name = key.split("/", 2)
                    models[labels[int(j)]][name] = value
            return TrainedReference(models, arrays["held/record_id"], arrays["forgotten/record_id"])
        except (ValueError, KeyError, IndexError) as err:  # ArchiveError is a ValueError
            warnings.warn(
                f"kept reference federation {path} cannot be used ({err}); training it again",
                stacklevel=2,
            )
            return None

    def save(self, config: ExperimentConfig, trained: TrainedReference) -> Path:
        """Keep ``trained``, the reference federation with config ``config``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = config_hash(config)
        labels = list(trained.models)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT),
            "config_hash": np.array(digest),
            "config": np.array(config.to_toml()),
            "labels": np.array(labels),
            "held/record_id": np.asarray(trained.held, dtype=np.int64),
            "forgotten/record_id": np.asarray(trained.forgotten, dtype=np.int64),
        }
        for j, label in enumerate(labels):
            for name, weights in trained.models[label].items():
                arrays[f"model/{j}/{name}"] = np.asarray(weights)
        return write_archive(self._file(digest), arrays, compress=False)
