"""Scoring the calibrated attacks from ``references.npz``'s arrays: what each attack
is fitted on and scored against (the list in :mod:`fedunlearn.evaluation.calibrated`,
whose :func:`~fedunlearn.evaluation.calibrated.score_calibrated` is the entry point)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fedunlearn.attacks.calibrated import LiRA, ULiRA, client_scores
from fedunlearn.attacks.forgetting import forgetting_report
from fedunlearn.attacks.metrics import attack_metrics
from fedunlearn.attacks.rmia import RMIA
from fedunlearn.seeding import derive_seed

__all__ = [
    "OFFLINE_SIDE",
    "ONLINE_SIDE",
    "CalibratedScores",
    "CalibratedSettings",
    "Scoring",
    "online_columns",
]

ONLINE_SIDE = "membership_online"
"""Archive side of the online attacks: their own candidates (a subset of membership)."""
OFFLINE_SIDE = "membership_offline"
"""Archive side of the offline attacks when some candidates lack OUT references."""


@dataclass(frozen=True)
class CalibratedSettings:
    """How the calibrated attacks are fitted and scored.

    Parameters
    ----------
    global_variance : bool
        LiRA and U-LiRA pool one standard deviation over records.
    rmia_a : float
        Offline RMIA's ``a``.
    coverage : float
        The retrain ensemble's central interval of the forgetting score.
    bootstrap : int
        Bootstrap resamples of every interval (0: none).
    seed : int
        The run's seed (each figure's bootstrap seed derives from it).
    """

    global_variance: bool = True
    rmia_a: float = 0.3
    coverage: float = 0.95
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.rmia_a <= 1:
            raise ValueError(f"rmia_a must be in [0, 1], got {self.rmia_a}")
        if not 0 < self.coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {self.coverage}")
        if self.bootstrap < 0:
            raise ValueError(f"bootstrap must be >= 0, got {self.bootstrap}")


@dataclass
class CalibratedScores:
    """Figures by attack and model, ROC curves, raw scores for ``attack_scores.npz``,
    and why an attack was left out."""

    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    roc: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def online_columns(in_mask: np.ndarray, global_variance: bool) -> np.ndarray:
    """Candidates with enough IN and enough OUT references for an online fit (one each
    with a pooled variance, two each without).

    Parameters
    ----------
    in_mask : array of shape (K, N)
        Which reference trained on which candidate.
    global_variance : bool
        Whether the fit pools one variance over records.
    """
    need = 1 if global_variance else 2
    inside = np.asarray(in_mask).astype(bool)
    return (inside.sum(axis=0) >= need) & ((~inside).sum(axis=0) >= need)


class _Fits:
    """The arrays, the settings, and how a figure is recorded."""

    def __init__(self, arrays: dict[str, np.ndarray], settings: CalibratedSettings) -> None:
        self.a, self.s, self.out = arrays, settings, CalibratedScores()
        self.models = [str(m) for m in arrays["models"]]
        self.retrain = str(arrays["retrain"])
        self.targets = [m for m in self.models if f"target/{m}/membership_phi" in arrays]
        self.truth = arrays["membership/member"].astype(int)
        self.inside = arrays["references/in"].astype(bool)
        self.retrain_in = arrays["references/retrain_in"].astype(bool)
        self.forgotten_in = arrays["references/forgotten_in"].astype(bool)

    def ref(self, model: str, what: str) -> np.ndarray:
        return self.a[f"references/{model}/{what}"]

    def target(self, model: str, what: str) -> np.ndarray:
        return self.a[f"target/{model}/{what}"]

    def figures(self, attack: str, label: str, scores: np.ndarray, truth: np.ndarray) -> None:
        seed = derive_seed(self.s.seed, "bootstrap", attack, label)
        result = attack_metrics(scores, truth, self.s.bootstrap, seed)
        self.out.metrics.setdefault(attack, {})[label] = result.summary()
        self.out.roc.setdefault(attack, {})[label] = {"fpr": result.fpr, "tpr": result.tpr}
        self.out.arrays[f"scores/{attack}/{label}"] = np.asarray(scores, dtype=np.float64)

    def attempt(self, attack: str, run: Callable[[], None]) -> None:
        """Run one attack; a ValueError (too few references, one class only) skips it."""
        try:
            run()
        except ValueError as err:
            self.out.skipped[attack] = str(err)
            for model in list(self.out.metrics.get(attack, {})):
                self.out.arrays.pop(f"scores/{attack}/{model}", None)
            self.out.metrics.pop(attack, None)
            self.out.roc.pop(attack, None)

    def side(self, name: str, cols: np.ndarray) -> None:
        """Candidates ``cols`` of the membership side as side ``name`` of the archive."""
        for key in ("record_id", "member", "client"):
            values = self.truth if key == "member" else self.a[f"membership/{key}"]
            self.out.arrays[f"{name}/{key}"] = values[cols].astype(
                np.int8 if key == "member" else np.int64
            )


class _MembershipScoring(_Fits):
    """Offline and online LiRA and RMIA: was the candidate in the run's training?"""

    def matched(self, model: str, what: str) -> tuple[np.ndarray, np.ndarray]:
        """The references' ``model`` (the target's own kind: originals for the original,
        retrained models for the retrained one, the method's seeds for a method) on the
        membership candidates, without the references in which it failed, and which of
        them trained on each candidate (the retrained: ``retrain_in``; the others
        ``in``: a method's model saw what its original saw)."""
        scores = self.ref(model, what)
        inside = self.retrain_in if model == self.retrain else self.inside
        kept = ~np.isnan(scores).all(axis=1)
        return scores[kept], inside[kept]

    def offline(self) -> None:
        """Offline LiRA and RMIA on every model against matched OUT references, on the
        candidates every model has enough of them for (side ``membership``, or
        ``membership_offline`` when some candidates lack them)."""
        need = 1 if self.s.global_variance else 2
        models, cols = [], np.ones(len(self.truth), dtype=bool)
        for model in self.targets:
            _, inside = self.matched(model, "membership_phi")
            if not len(inside):
                for attack in ("lira_offline", "rmia_offline"):
                    self.out.skipped[f"{attack}/{model}"] = f"{model} failed in every reference"
                continue
            models.append(model)
            cols &= (~inside).sum(axis=0) >= need
        if not models or not cols.any() or not 0 < self.truth[cols].sum() < cols.sum():
            self.out.skipped["lira_offline"] = self.out.skipped["rmia_offline"] = (
                f"no members and non-members with {need} OUT reference(s) of every model"
            )
            return
        side = "membership" if cols.all() else OFFLINE_SIDE
        if not cols.all():
            self.side(OFFLINE_SIDE, cols)
        self.attempt("lira_offline", lambda: self.lira_offline(models, cols))
        self.attempt("rmia_offline", lambda: self.rmia_offline(models, cols))
        for attack in ("lira_offline", "rmia_offline"):
            if attack in self.out.metrics:
                self.out.arrays[f"side/{attack}"] = np.array(side)

    def lira_offline(self, models: list[str], cols: np.ndarray) -> None:
        for model in models:
            phi, inside = self.matched(model, "membership_phi")
            lira = LiRA(online=False, global_variance=self.s.global_variance)
            lira.fit(phi[:, cols], inside[:, cols])
            scores = lira.score(self.target(model, "membership_phi")[cols])
            self.figures("lira_offline", model, scores, self.truth[cols])

    def rmia_offline(self, models: list[str], cols: np.ndarray) -> None:
        for model in models:
            p, inside = self.matched(model, "membership_p")
            population = self.matched_population(model)
            rmia = RMIA(offline_a=self.s.rmia_a)
            rmia.fit(p[:, cols], population, inside[:, cols])
            scores = rmia.score(
                self.target(model, "membership_p")[cols], self.target(model, "population_p")
            )
            self.figures("rmia_offline", model, scores, self.truth[cols])

    def matched_population(self, model: str) -> np.ndarray:
        """The matched references' probabilities on the population (as :meth:`matched`)."""
        kept = ~np.isnan(self.ref(model, "membership_phi")).all(axis=1)
        return self.ref(model, "population_p")[kept]

    def lira_online(self, cols: np.ndarray) -> None:
        lira = LiRA(online=True, global_variance=self.s.global_variance)
        lira.fit(self.ref("original", "membership_phi")[:, cols], self.inside[:, cols])
        for model in self.targets:
            scores = lira.score(self.target(model, "membership_phi")[cols])
            self.figures("lira_online", model, scores, self.truth[cols])

    def rmia_online(self, cols: np.ndarray) -> None:
        rmia = RMIA(offline_a=None)
        rmia.fit(
            self.ref("original", "membership_p")[:, cols],
            self.ref("original", "population_p"),
            self.inside[:, cols],
        )
        for model in self.targets:
            scores = rmia.score(
                self.target(model, "membership_p")[cols], self.target(model, "population_p")
            )
            self.figures("rmia_online", model, scores, self.truth[cols])

    def online(self) -> None:
        """Online LiRA and RMIA on the candidates with IN and OUT originals."""
        cols = online_columns(self.inside, self.s.global_variance)
        if cols.any() and 0 < self.truth[cols].sum() < cols.sum():
            self.side(ONLINE_SIDE, cols)
            self.attempt("lira_online", lambda: self.lira_online(cols))
            self.attempt("rmia_online", lambda: self.rmia_online(cols))
            for attack in ("lira_online", "rmia_online"):
                if attack in self.out.metrics:
                    self.out.arrays[f"side/{attack}"] = np.array(ONLINE_SIDE)
        else:
            self.out.skipped["lira_online"] = self.out.skipped["rmia_online"] = (
                "no members and non-members with both IN and OUT references (online "
                "[audit] with memorization canaries among the members gives them)"
            )


class Scoring(_MembershipScoring):
    """One pass over ``references.npz``'s arrays: membership, then the unlearning
    questions (U-LiRA, the per-client test, forgetting against the retrain ensemble)."""

    def run(self) -> CalibratedScores:
        self.offline()
        self.online()
        if len(self.a["forgotten/record_id"]):
            self.attempt("ulira", self.ulira)
            self.attempt("client_lira", self.client_test)
            self.attempt("forgetting", self.forgetting)
        else:
            for attack in ("ulira", "client_lira", "forgetting"):
                self.out.skipped[attack] = "no forgotten candidate"
        return self.out

    def methods(self) -> list[str]:
        return [m for m in self.targets if m not in ("original", self.retrain)]

    def ulira(self) -> None:
        retrained = self.ref(self.retrain, "forgotten_phi")
        ids = self.a["forgotten/record_id"]
        for method in self.methods():
            # A reference speaks about a record it trained on and then unlearned.
            unlearned = np.where(self.forgotten_in, self.ref(method, "forgotten_phi"), np.nan)
            need = 1 if self.s.global_variance else 2
            cols = (~np.isnan(unlearned)).sum(axis=0) >= need
            if not cols.any():
                raise ValueError(
                    f"no forgotten candidate was unlearned by {method} in {need} references"
                )
            ulira = ULiRA(global_variance=self.s.global_variance)
            ulira.fit(unlearned[:, cols], retrained[:, cols])
            positive = ulira.score(self.target(method, "forgotten_phi")[cols])
            negative = ulira.score(self.target(self.retrain, "forgotten_phi")[cols])
            scores = np.concatenate([positive, negative])
            truth = np.concatenate([np.ones(cols.sum()), np.zeros(cols.sum())])
            self.figures("ulira", method, scores, truth)
            self.out.arrays[f"ulira/{method}/record_id"] = np.concatenate([ids[cols], ids[cols]])
            self.out.arrays[f"ulira/{method}/unlearned"] = truth.astype(np.int8)
            self.out.arrays["side/ulira"] = np.array("ulira")

    def client_test(self) -> None:
        phi = np.concatenate(
            [self.ref("original", "forgotten_phi"), self.ref(self.retrain, "forgotten_phi")]
        )
        mask = np.concatenate([self.forgotten_in, np.zeros_like(self.forgotten_in)])
        lira = LiRA(online=False, global_variance=self.s.global_variance).fit(phi, mask)
        owners = self.a["forgotten/client"]
        for model in self.targets:
            clients, neglog_p = client_scores(
                lira.score(self.target(model, "forgotten_phi")), owners, "fisher"
            )
            figures = {
                f"neglog_p_client{int(c)}": float(v) for c, v in zip(clients, neglog_p, strict=True)
            }
            figures["neglog_p"] = float(np.mean(neglog_p))
            figures["records"] = float(len(owners))
            self.out.metrics.setdefault("client_lira", {})[model] = figures

    def forgetting(self) -> None:
        retrained = self.ref(self.retrain, "forgotten_phi")
        cols = self.forgotten_in.all(axis=0)
        if not cols.any():
            raise ValueError("no forgotten candidate was trained on by every reference")
        for method in self.methods():
            outputs = self.ref(method, "forgotten_phi")
            rows = np.isfinite(outputs).all(axis=1)
            seed = derive_seed(self.s.seed, "forgetting", method) % 2**32
            report = forgetting_report(
                outputs[rows][:, cols],
                retrained[:, cols],
                coverage=self.s.coverage,
                n_boot=max(self.s.bootstrap, 1),
                seed=seed,
            )
            figures: dict[str, float] = {
                "records": float(cols.sum()),
                "method_seeds": float(report.method_seeds),
                "retrained_models": float(report.retrained_models),
            }
            for name in ("outside", "klom", "challenge"):
                estimate = getattr(report, name)
                figures[name] = float("nan") if estimate is None else estimate.value
                if self.s.bootstrap and estimate is not None:
                    figures[f"{name}_ci_low"] = estimate.low
                    figures[f"{name}_ci_high"] = estimate.high
            self.out.metrics.setdefault("forgetting", {})[method] = figures
