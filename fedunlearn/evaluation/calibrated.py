"""Calibrated attacks of the leakage audit: LiRA, RMIA, U-LiRA, the per-client test and
forgetting against the retrain ensemble, scored from the reference federations'
outputs (``[audit]``, docs/calibrated.md).

Everything here reads one flat dict of arrays, the content of ``references.npz``, so the
audit can be recomputed from the run folder alone (:func:`read_references`,
:func:`score_calibrated`). The statistics are :mod:`fedunlearn.attacks`' pure functions;
this module chooses their inputs and scores them with the truth.

``references.npz`` (NumPy, no pickled objects; K references; N membership candidates
in the order of ``attack_scores.npz``'s membership side; F forgotten candidates, the
deleted records of the deletion side; Z population records, the observer's own
held-out records; ``<model>`` is ``original``, each method's label or the retrained
reference's):

===================================  ==========  ==========================================
key                                  shape       what
===================================  ==========  ==========================================
``format``                           ()          ``fedunlearn.references/1``
``models``                           (M,)        model labels, the retrained one among them
``retrain``                          ()          label of the retrained model
``membership/record_id``             (N,)        membership candidates
``membership/member``                (N,)        1: the run trained on it (its truth)
``membership/client``                (N,)        client holding it in the run (-1: none)
``forgotten/record_id``              (F,)        forgotten candidates
``forgotten/client``                 (F,)        client that held it
``population/record_id``             (Z,)        RMIA's population z
``references/in``                    (K, N)      1: reference k's original trained on it
``references/retrain_in``            (K, N)      1: reference k's retrained model did
``references/forgotten_in``          (K, F)      1: reference k trained on it, then forgot it
``references/<model>/membership_phi``  (K, N)    logit confidence phi (NaN: model failed)
``references/<model>/membership_p``    (K, N)    probability of the true class
``references/<model>/forgotten_phi``   (K, F)    phi on the forgotten candidates
``references/<model>/population_p``    (K, Z)    probability of the true class
``target/<model>/membership_phi``    (N,)        the run's released model, same figures
``target/<model>/membership_p``      (N,)
``target/<model>/forgotten_phi``     (F,)
``target/<model>/population_p``      (Z,)
===================================  ==========  ==========================================

What is scored (``attacks.json``, under the attack's name, by model):

* ``lira_offline``, ``rmia_offline``: every membership candidate, on every model,
  against OUT references of the model's own kind (LiRA's reference models are trained
  like the target): the references' originals that did not train on it for the
  original, the retrained references that did not for the retrained model, the
  method's seeds whose original did not for a method's model. Mixing kinds biases the
  test where the kinds differ on a candidate (the forgotten canaries are OUT of every
  retrained reference, fresh twins of every model). Candidates some model has too few
  OUT references for are left out: the side is then ``membership_offline``
  (``membership_offline/record_id``, ``/member``, ``/client``);
* ``lira_online``, ``rmia_online``: the candidates with at least one IN and one OUT
  original among the references (online ``[audit]``: each memorization canary and twin
  is planted in about half of them; twins drawn beyond those never are, and are left
  out), references' originals only;
* ``ulira``, per method: per forgotten candidate, U-LiRA fitted on the references'
  method models (where the reference trained on it) against their retrained models;
  positives are the scores of the run's method model, negatives those of the run's
  retrained model (AUC 0.5: the method's output cannot be told from retraining);
* ``client_lira``, per model: offline LiRA on the forgotten candidates (OUT: the
  retrained references), pooled per forgotten client with Fisher's method
  (``neglog_p``: ``-log`` p-value of "the client did not take part");
* ``forgetting``, per method: :func:`~fedunlearn.attacks.forgetting.forgetting_report`
  of the references' method models (its seeds) against their retrained models, on the
  forgotten candidates every reference trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedunlearn.archives import read_archive, write_archive
from fedunlearn.evaluation.calibrated_scoring import (
    OFFLINE_SIDE,
    ONLINE_SIDE,
    CalibratedScores,
    CalibratedSettings,
    Scoring,
    online_columns,
)

__all__ = [
    "FILE",
    "FORMAT",
    "OFFLINE_SIDE",
    "ONLINE_SIDE",
    "CalibratedScores",
    "CalibratedSettings",
    "online_columns",
    "read_references",
    "score_calibrated",
    "write_references",
]

FORMAT = "fedunlearn.references/1"
FILE = "references.npz"


def write_references(arrays: dict[str, np.ndarray], run_dir: Path) -> Path:
    """Write ``references.npz`` whole (a temporary file renamed); return its path."""
    return write_archive(Path(run_dir) / FILE, arrays)


def read_references(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``references.npz`` (``path``: the file or the run folder)."""
    return read_archive(path, FILE, FORMAT)


def score_calibrated(
    arrays: dict[str, np.ndarray], settings: CalibratedSettings
) -> CalibratedScores:
    """Every calibrated attack of the module docstring, from ``references.npz``'s arrays.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The content of ``references.npz`` (see the module docstring).
    settings : CalibratedSettings
        Fits and bootstrap.

    Returns
    -------
    CalibratedScores
        An attack that cannot be scored (too few references on one side, one class of
        candidates only) is in ``skipped`` with the reason; the others stand.
    """
    return Scoring(arrays, settings).run()
