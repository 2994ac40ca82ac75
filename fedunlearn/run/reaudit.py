"""Redo the leakage audit (phase "attack") of a finished run from its folder alone.

``fedunlearn audit RUN_DIR`` reads ``config.toml`` and ``models.npz``, rebuilds the
world from the config (:func:`~fedunlearn.data.world.federated_data`, deterministic
in the config), and runs :func:`~fedunlearn.evaluation.leakage.run_leakage_audit` on
the saved models: nothing is trained but the attacker's own shadow models. Keys of
the audit's sections (:data:`AUDIT_SECTIONS`) may be changed with overrides; any other
key would describe another run, and is refused.

Every file the audit writes (``attacks.json``, ``attacks.md``, ``attack_scores.npz``,
``attacks_roc.png``) and ``metrics.json`` (its ``attacks`` and ``attack_setup``
entries and the attack columns of ``table_columns``; everything else as the run left
it), with ``comparison.md``/``.csv`` that show those columns, are first written to a
scratch folder inside the run folder and moved over the old ones only once all of
them are written: an audit that fails leaves the run's results as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from torch import nn

from fedunlearn.config.experiment import SECTIONS, ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.data.world import federated_data
from fedunlearn.evaluation.archive import FILE as SCORES_FILE
from fedunlearn.evaluation.candidates import LeakageUnavailableError
from fedunlearn.evaluation.leakage import (
    LeakageReport,
    is_leakage_column,
    run_leakage_audit,
    write_leakage,
)
from fedunlearn.learning.models import build_model
from fedunlearn.reporting.figures import plot_attack_roc
from fedunlearn.reporting.folder import RunFolderError, write_text
from fedunlearn.reporting.models import read_models
from fedunlearn.reporting.schema import Leakage, RunMetrics
from fedunlearn.reporting.tables import attack_markdown, comparison_rows, write_comparison
from fedunlearn.unlearning.requests import ForgetSet

__all__ = ["AUDIT_SECTIONS", "Reaudit", "ReauditError", "reaudit"]

AUDIT_SECTIONS = ("attack", "release", "audit")
"""Sections a re-audit may change: what the attacker does and what is released (and an
``[audit]`` section, where the config has one). Nothing in them changes training."""

FINISHED = ("complete", "partial")


class ReauditError(RunFolderError):
    """The folder cannot be re-audited (not a finished run, a client attacker, ...);
    the message says why and names the file or key."""


@dataclass(frozen=True)
class Reaudit:
    """What a re-audit did: the folder, the config it audited with, the leakage report
    and the files it replaced."""

    run_dir: Path
    config: ExperimentConfig
    report: LeakageReport
    written: list[str]


def audit_overrides(overrides: Sequence[str]) -> list[str]:
    """``overrides`` if each sets a key of :data:`AUDIT_SECTIONS`.

    Raises
    ------
    ConfigError
        Naming every override whose key lies outside those sections.
    """
    allowed = [s for s in AUDIT_SECTIONS if s in SECTIONS]  # [audit] where it exists
    problems = []
    for assignment in overrides:
        key = assignment.partition("=")[0].strip()
        section = key.split(".", 1)[0].strip().strip("\"'")
        if section not in allowed or "." not in key:
            problems.append(
                f"{key or assignment!r} cannot change in a re-audit: only keys of "
                + ", ".join(f"[{s}]" for s in allowed)
                + " can (anything else would need another training)"
            )
    if problems:
        raise ConfigError(problems, "re-audit overrides")
    return list(overrides)


def finished_run(run_dir: str | Path) -> tuple[Path, dict]:
    """The run folder and its ``metrics.json``, if it holds a finished run.

    Raises
    ------
    ReauditError
        The folder, its ``config.toml`` or its ``metrics.json`` is missing or
        unreadable, or the run did not finish.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise ReauditError(f"{folder} is not a run folder: no such directory")
    for name in ("config.toml", "metrics.json"):
        if not (folder / name).is_file():
            raise ReauditError(f"{folder / name} does not exist: {folder} is not a finished run")
    try:
        raw = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        raise ReauditError(f"{folder / 'metrics.json'} is not readable JSON: {err}") from err
    status = raw.get("status") if isinstance(raw, dict) else None
    if status not in FINISHED:
        raise ReauditError(
            f"{folder / 'metrics.json'}: the run's status is {status!r}; only a finished "
            f"run ({' or '.join(FINISHED)}) can be re-audited"
        )
    return folder.resolve(), raw


def reaudit(run_dir: str | Path, overrides: Sequence[str] = ()) -> Reaudit:
    """Redo the leakage audit of the finished run in ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        A finished run folder: ``config.toml``, ``metrics.json`` and ``models.npz``.
    overrides : sequence of str
        ``section.key=value`` assignments, of :data:`AUDIT_SECTIONS` only
        (e.g. ``attack.negatives=400``).

    Raises
    ------
    ReauditError
        Not a finished run, no leakage audit to run (``attack.enabled`` false, or
        candidates the run cannot provide) or a client attacker (it needs the
        federation).
    ConfigError
        An override outside the audit's sections, or an invalid value.
    ModelsFileError
        ``models.npz`` is missing or unreadable.
    """
    overrides = audit_overrides(overrides)
    folder, raw = finished_run(run_dir)
    config = ExperimentConfig.from_toml(folder / "config.toml")
    if overrides:
        config = config.with_overrides(overrides)
    if not config.attack.enabled:
        raise ReauditError(
            f"attack.enabled is false in {folder / 'config.toml'}: nothing to audit "
            "(add --set attack.enabled=true)"
        )
    if config.attack.attacker != "observer":
        raise ReauditError(
            f"attack.attacker = {config.attack.attacker!r}: a client attacker attacks "
            "through the federation, which a re-audit does not start; only the observer "
            "(attack.attacker = 'observer') can be re-audited"
        )
    if config.audit.references > 0:
        # Its calibrated figures come from reference federations a re-audit would have
        # to retrain for new candidates; redoing only the rest would drop them.
        raise ReauditError(
            f"{folder} was audited with reference federations (audit.references = "
            f"{config.audit.references}); a re-audit would lose its calibrated attacks. "
            "Recompute them from references.npz (docs/calibrated.md), or run again"
        )
    models = read_models(folder)
    if "original" not in models:
        raise ReauditError(f"{folder / 'models.npz'} has no 'original' model")
    world = federated_data(config)
    m, info = config.model, world.info

    def new_model() -> nn.Module:
        return build_model(m.name, info.input_shape, info.num_classes, m.hidden, config.seed)

    forgotten_raw = raw.get("forgotten", {})
    forgotten = ForgetSet.of(
        forgotten_raw.get("clients", []),
        {int(c): ids for c, ids in forgotten_raw.get("records", {}).items()},
    )
    try:
        report = run_leakage_audit(config, world, models, forgotten, new_model)
    except LeakageUnavailableError as err:
        raise ReauditError(f"the leakage audit cannot run on {folder}: {err}") from err
    metrics = RunMetrics.from_json(raw)
    setup = dict(report.setup)
    setup["reaudit"] = {
        "overrides": list(overrides),
        "when": datetime.now().isoformat(timespec="seconds"),
    }
    metrics.attacks = Leakage(report.metrics, setup)
    for label, columns in metrics.table_columns.items():
        metrics.table_columns[label] = {
            k: v for k, v in columns.items() if not is_leakage_column(k)
        }
    for label in models:
        if label != "original":
            metrics.add_columns(label, report.columns_for(label, metrics.reference))
    written = _replace_files(folder, report, metrics, figures=config.output.figures)
    return Reaudit(folder, config, report, written)


def _replace_files(
    folder: Path, report: LeakageReport, metrics: RunMetrics, *, figures: bool
) -> list[str]:
    """Write every new file to a scratch folder, then move each over its old one."""
    scratch = Path(tempfile.mkdtemp(prefix=".reaudit-", dir=folder))
    try:
        write_leakage(report, scratch)
        write_text(scratch / "attacks.md", attack_markdown(report.metrics))
        if figures:
            plot_attack_roc(report.roc, report.metrics, scratch / "attacks_roc.png")
        write_comparison(comparison_rows(metrics), scratch)
        write_text(scratch / "metrics.json", metrics.dumps())
        # metrics.json last: a reader that sees the new metrics sees every new file.
        names = sorted(p.name for p in scratch.iterdir() if p.name != "metrics.json")
        names.append("metrics.json")
        if not (scratch / SCORES_FILE).exists() and (folder / SCORES_FILE).exists():
            (folder / SCORES_FILE).unlink()  # the new audit kept no raw scores
        for name in names:
            os.replace(scratch / name, folder / name)
        return names
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
