"""``attack_scores.npz``: the leakage audit's raw data, so anyone can re-check it.

Every attack's score of every candidate on every model, the truth about each candidate
(member or not; deleted or not), its record id and the client holding it, and the
per-client scores of client deletion inference: every AUC and TPR at low FPR in
``metrics.json`` follows from this archive with scikit-learn alone (the recipe is in
``docs/threats.md``; a test runs it).

Layout (NumPy ``.npz``, no pickled objects; ``<model>`` is ``original``, a method's
label or the reference's):

==================================  ==========  =============================================
key                                 dtype       what
==================================  ==========  =============================================
``format``                          str         ``fedunlearn.attack_scores/1``
``membership/record_id``            int64       candidates of ``mia_*``, in scoring order
``membership/client``               int64       client holding it (-1: none)
``membership/member``               int8        1: member (trained on), 0: non-member
``deletion/record_id``              int64       candidates of ``deletion_records``
``deletion/client``                 int64       client holding it
``deletion/deleted``                int8        1: deleted by the unlearning, 0: retained
``side/<attack>``                   str         ``membership`` or ``deletion``: its candidates
``scores/<attack>/<model>``         float64     one score per candidate (higher: positive)
``client_samples/client``           int64       client deletion inference: whose record
``client_samples/record_id``        int64       the records the attacker holds of each client
``client_scores/<model>/client``    int64       candidate clients
``client_scores/<model>/score``     float64     mean score of the client's records
``client_scores/<model>/removed``   int8        1: the client's data was forgotten
==================================  ==========  =============================================

With reference federations (``[audit]``, :mod:`fedunlearn.evaluation.calibrated`) the
calibrated attacks add their scores: ``lira_offline`` and ``rmia_offline`` on the
membership side; ``lira_online`` and ``rmia_online`` on side ``membership_online``
(``membership_online/record_id``, ``/client``, ``/member``: the candidates with IN and
OUT references); ``ulira`` on side ``ulira`` (``ulira/<method>/record_id`` and
``ulira/<method>/unlearned``: each forgotten candidate scored on the method's model, 1,
and on the retrained one, 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedunlearn.archives import read_archive, write_archive
from fedunlearn.evaluation.candidates import MEMBERSHIP_ATTACKS, Candidates

FORMAT = "fedunlearn.attack_scores/1"
FILE = "attack_scores.npz"


def side_of(attack: str) -> str:
    """Which candidates an attack scores: ``membership`` or ``deletion``."""
    return "membership" if attack in MEMBERSHIP_ATTACKS else "deletion"


def attack_arrays(
    scores: dict[str, np.ndarray],
    client_scores: dict[str, dict[int, float]],
    candidates: Candidates,
) -> dict[str, np.ndarray]:
    """The archive's arrays, by key (see the module's table).

    Parameters
    ----------
    scores : dict of str to ndarray
        Scores by ``"<attack>/<model>"``, aligned with the candidates of the attack.
    client_scores : dict of str to dict of int to float
        Per-client scores by model.
    candidates : Candidates
        The candidates with their truth, record ids and holders.
    """
    c = candidates
    out: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "membership/record_id": np.asarray(c.membership_ids, np.int64),
        "membership/client": np.asarray(c.membership_clients, np.int64),
        "membership/member": np.asarray(c.membership_truth).astype(np.int8),
        "deletion/record_id": np.asarray(c.deletion_ids, np.int64),
        "deletion/client": np.asarray(c.deletion_clients, np.int64),
        "deletion/deleted": np.asarray(c.deletion_truth).astype(np.int8),
    }
    for key, values in scores.items():
        attack = key.partition("/")[0]
        out[f"side/{attack}"] = np.array(side_of(attack))
        out[f"scores/{key}"] = np.asarray(values, dtype=np.float64)
    held = sorted(c.client_sample_ids)
    out["client_samples/client"] = np.concatenate(
        [np.full(len(c.client_sample_ids[k]), k, np.int64) for k in held] or [np.zeros(0, int)]
    ).astype(np.int64)
    out["client_samples/record_id"] = np.concatenate(
        [c.client_sample_ids[k] for k in held] or [np.zeros(0, int)]
    ).astype(np.int64)
    for label, by_client in client_scores.items():
        ids = sorted(by_client)
        out[f"client_scores/{label}/client"] = np.array(ids, dtype=np.int64)
        out[f"client_scores/{label}/score"] = np.array(
            [by_client[i] for i in ids], dtype=np.float64
        )
        out[f"client_scores/{label}/removed"] = np.array(
            [i in c.removed_clients for i in ids], dtype=np.int8
        )
    return out


def write_attack_scores(arrays: dict[str, np.ndarray], run_dir: Path) -> Path:
    """Write ``attack_scores.npz`` whole (a temporary file renamed); return its path."""
    return write_archive(Path(run_dir) / FILE, arrays)


def read_attack_scores(path: str | Path) -> dict[str, np.ndarray]:
    """The archive's arrays by key (``path``: the file or the run folder holding it)."""
    return read_archive(path, FILE, FORMAT)
