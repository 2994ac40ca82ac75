"""Reference federations of a run (``[audit] references``) and the calibrated attacks
they feed.

Reference federation k is the run's config with its own training seed, on the same
data world (:func:`fedunlearn.federation.references.reference_config`). It trains on
the run's clients (through a grid that tags its messages), gathers the same requests,
retrains without the forgotten clients and runs the run's methods, quietly: the
phases of a run up to unlearning, nothing written but errors. Its models' outputs on
the leakage audit's candidates, with which of them each model trained on, go to
``references.npz``; :func:`fedunlearn.evaluation.calibrated.score_calibrated` turns that
file into the calibrated attacks' figures.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.special import log_softmax
from torch import nn

from fedunlearn.attacks.access import FullAccess, ReleasedAccess
from fedunlearn.attacks.calibrated import logit_confidence, logit_confidence_from_proba
from fedunlearn.config import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import FederatedData
from fedunlearn.evaluation.calibrated import (
    FORMAT,
    CalibratedScores,
    CalibratedSettings,
    score_calibrated,
    write_references,
)
from fedunlearn.evaluation.candidates import forgotten_records, owners
from fedunlearn.evaluation.leakage import LeakageReport
from fedunlearn.federation.references import reference_config, reference_grid
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.components import resolve_components
from fedunlearn.run.context import ExperimentScope
from fedunlearn.run.failures import Failures
from fedunlearn.run.phases.prepare import Prepare
from fedunlearn.run.phases.unlearn import Unlearn
from fedunlearn.run.reference_store import ReferenceStore, TrainedReference

__all__ = [
    "CalibrationRecords",
    "calibrated_attacks",
    "model_outputs",
    "reference_outputs",
    "train_reference",
]


class CalibrationRecords:
    """The records every model is asked about: membership candidates, forgotten
    candidates (the deleted records of the deletion side), the population.

    Parameters
    ----------
    leakage : LeakageReport
        The run's leakage audit (an observer's: it holds the population).
    world : FederatedData
        The run's world (who holds each record).
    """

    def __init__(self, leakage: LeakageReport, world: FederatedData) -> None:
        candidates, population = leakage.candidates, leakage.population
        if candidates is None or population is None:
            raise ValueError("calibrated attacks need the observer's leakage audit")
        x, y = candidates.view.membership
        self.membership = ArrayDataset(x, y, candidates.membership_ids)
        self.member = np.asarray(candidates.membership_truth).astype(np.int8)
        self.membership_client = candidates.membership_clients
        deleted = np.asarray(candidates.deletion_truth).astype(bool)
        dx, dy = candidates.view.deletion
        self.forgotten = ArrayDataset(dx[deleted], dy[deleted], candidates.deletion_ids[deleted])
        self.forgotten_client = owners(world, self.forgotten.ids)
        self.population = population

    def arrays(self) -> dict[str, np.ndarray]:
        """The record part of ``references.npz``."""
        return {
            "membership/record_id": self.membership.ids.astype(np.int64),
            "membership/member": self.member,
            "membership/client": self.membership_client.astype(np.int64),
            "forgotten/record_id": self.forgotten.ids.astype(np.int64),
            "forgotten/client": self.forgotten_client.astype(np.int64),
            "population/record_id": self.population.ids.astype(np.int64),
        }


def model_outputs(
    access: FullAccess, records: CalibrationRecords, config: ExperimentConfig
) -> dict[str, np.ndarray]:
    """phi and the true class's probability of one model on the records, as the release
    policy shows them (``release.mode``; exact phi from the logits under a full
    release).

    Parameters
    ----------
    access : FullAccess
        The model.
    records : CalibrationRecords
        What to ask it about.
    config : ExperimentConfig
        Its ``[release]`` says what an observer sees.
    """
    r = config.release
    released = ReleasedAccess(access, r.mode, r.k, r.decimals, r.temperature)
    out: dict[str, np.ndarray] = {}
    for name, data in (
        ("membership", records.membership),
        ("forgotten", records.forgotten),
        ("population", records.population),
    ):
        y = data.y.astype(np.int64)
        if r.mode == "full":
            logits = access.logits(data.x)
            phi = logit_confidence(logits, y) if len(y) else np.zeros(0)
            p = np.exp(log_softmax(logits, axis=1))[np.arange(len(y)), y]
        else:
            proba = released.predict_proba(data.x)
            phi = logit_confidence_from_proba(proba, y) if len(y) else np.zeros(0)
            p = proba[np.arange(len(y)), y]
        if name != "population":
            out[f"{name}_phi"] = phi
        out[f"{name}_p"] = p
    out.pop("forgotten_p")
    return out


def train_reference(
    scope: ExperimentScope, index: int, config: ExperimentConfig, home: Path
) -> TrainedReference:
    """Train reference federation ``index`` of the run: training, retraining without
    the forgotten clients, the run's methods.

    Parameters
    ----------
    scope : ExperimentScope
        The run (its config, and the grid its clients answer on).
    index : int
        Which reference (its messages' tag).
    config : ExperimentConfig
        Its config, ``reference_config(scope.config, index)``.
    home : Path
        The reference's working folder (its history while it runs; errors of methods
        that failed in it stay there).
    """
    home.mkdir(parents=True, exist_ok=True)
    grid = reference_grid(scope.ctx.grid, index, config.audit.online)
    # Imported here: the run's experiment module imports the attack phase, which
    # imports this module.
    from fedunlearn.run.experiment import train_federation

    prepare = Prepare(grid, config, home, PhaseProgress(enabled=False))
    ctx = prepare.context()
    federation = train_federation(ctx, prepare)
    components = resolve_components(config)
    unlearned = Unlearn(ExperimentScope(ctx, federation, config, components, Failures(home))).run()
    shutil.rmtree(home / "history", ignore_errors=True)
    held = np.concatenate([np.asarray(c.ids, dtype=np.int64) for c in ctx.world.clients])
    forgotten = forgotten_records(ctx.world, federation.forgotten).ids
    return TrainedReference(dict(unlearned.final), held, np.asarray(forgotten, dtype=np.int64))


def reference_outputs(
    trained: TrainedReference,
    records: CalibrationRecords,
    config: ExperimentConfig,
    new_model: Callable[[], nn.Module],
) -> dict[str, np.ndarray]:
    """What a trained reference federation says about ``records``.

    Returns
    -------
    dict of str to ndarray
        ``in``, ``retrain_in`` (membership candidates), ``forgotten_in``, and
        ``<model>/<output>`` for every model it produced (``original``, the retrained
        one, every method that did not fail).
    """
    out: dict[str, np.ndarray] = {}
    inside, retrain_in, _ = trained.trained_on(records.membership.ids)
    _, _, forgotten_in = trained.trained_on(records.forgotten.ids)
    out["in"], out["retrain_in"], out["forgotten_in"] = inside, retrain_in, forgotten_in
    for label, arrays in trained.models.items():
        for key, values in model_outputs(FullAccess(new_model, arrays), records, config).items():
            out[f"{label}/{key}"] = values
    return out


def calibrated_attacks(
    scope: ExperimentScope, leakage: LeakageReport, reference: str, run_dir: Path
) -> tuple[CalibratedScores, dict[str, float]]:
    """Train the run's reference federations, write ``references.npz`` and score the
    calibrated attacks on the run's released models.

    Parameters
    ----------
    scope : ExperimentScope
        The run.
    leakage : LeakageReport
        Its leakage audit (candidates, population, released models).
    reference : str
        Label of the run's retrained model.
    run_dir : Path
        The run folder.

    Returns
    -------
    (CalibratedScores, setup)
        The figures, and what the audit used (references, seconds they took).
    """
    config = scope.config
    count = config.audit.references
    records = CalibrationRecords(leakage, scope.ctx.world)
    labels = list(leakage.released)
    if reference not in labels:
        raise ValueError(f"the retrained model {reference!r} was not released")
    store = ReferenceStore.beside(run_dir)
    started = time.perf_counter()
    outputs, reused = [], 0
    for index in range(count):
        reference_cfg = reference_config(config, index)
        trained = store.load(reference_cfg)
        if trained is None:
            scope.ctx.progress.note(f"reference federation {index + 1}/{count}")
            home = run_dir / "references" / f"{index}"
            trained = train_reference(scope, index, reference_cfg, home)
            store.save(reference_cfg, trained)
        else:
            reused += 1
            scope.ctx.progress.note(f"reference federation {index + 1}/{count}: kept")
        outputs.append(reference_outputs(trained, records, config, scope.ctx.new_model))
    seconds = time.perf_counter() - started
    arrays = records.arrays()
    arrays["format"] = np.array(FORMAT)
    arrays["models"] = np.array(labels)
    arrays["retrain"] = np.array(reference)
    for key in ("in", "retrain_in", "forgotten_in"):
        arrays[f"references/{key}"] = np.stack([o[key] for o in outputs]).astype(np.int8)
    for label in labels:
        for key, values in model_outputs(
            FullAccess(scope.ctx.new_model, leakage.released[label]), records, config
        ).items():
            arrays[f"target/{label}/{key}"] = values
            # A method that failed in a reference: NaN, left out where it is read.
            arrays[f"references/{label}/{key}"] = np.stack(
                [o.get(f"{label}/{key}", np.full(values.shape, np.nan)) for o in outputs]
            )
    _keep_only_folders_with_errors(run_dir / "references")
    write_references(arrays, run_dir)
    settings = CalibratedSettings(
        global_variance=config.audit.global_variance,
        rmia_a=config.audit.rmia_a,
        coverage=config.audit.coverage,
        bootstrap=config.attack.bootstrap,
        seed=config.seed,
    )
    setup = {
        "references": float(count),
        "references_online": float(config.audit.online),
        "references_seconds": seconds,
        "references_reused": float(reused),
    }
    return score_calibrated(arrays, settings), setup


def _keep_only_folders_with_errors(folder: Path) -> None:
    """Remove the references' working folders that hold nothing (no method failed)."""
    for path in sorted(folder.glob("*"), reverse=True):
        if path.is_dir() and not any(path.rglob("*")):
            path.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
