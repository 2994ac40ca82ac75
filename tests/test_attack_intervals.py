"""Bootstrap confidence intervals of attack figures: the vectorised figures against
scikit-learn, intervals on cases with a known answer (degenerate scores, the
Hanley-McNeil standard error, coverage on two Gaussians), and the settings' checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from fedunlearn.attacks.bootstrap import _counts, bootstrap_figures, curve_figures, resolvable
from fedunlearn.attacks.metrics import attack_metrics, tpr_at_fpr
from fedunlearn.config.options import ConfigError
from tests.conftest import small_config


def _binned(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, inverse = np.unique(scores, return_inverse=True)
    k = inverse.max() + 1
    return (
        np.bincount(inverse[truth == 1], minlength=k)[None],
        np.bincount(inverse[truth == 0], minlength=k)[None],
    )


def test_the_figures_of_one_sample_are_scikit_learns() -> None:
    rng = np.random.default_rng(7)
    limits = {"a": 0.01, "b": 0.1, "c": 0.5}
    for _ in range(50):
        n = int(rng.integers(4, 300))
        scores = np.round(rng.normal(size=n), 1)  # many ties
        truth = rng.integers(0, 2, size=n)
        if truth.min() == truth.max():
            continue
        got = curve_figures(*_binned(scores, truth), limits)
        fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
        assert got["auc"][0] == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
        assert got["advantage"][0] == pytest.approx(float(np.max(tpr - fpr)), abs=1e-12)
        for name, limit in limits.items():
            assert got[name][0] == tpr_at_fpr(fpr, tpr, limit)


def test_resolvable_needs_one_over_the_limit_negatives() -> None:
    assert resolvable(1000, 0.001) and not resolvable(999, 0.001)
    assert resolvable(100, 0.01) and not resolvable(99, 0.01) and not resolvable(0, 0.5)


def test_every_resample_keeps_the_number_of_each_class() -> None:
    bins = np.array([0, 0, 1, 3, 3, 3])
    counts = _counts(bins, 5, 40, np.random.default_rng(0))
    assert counts.shape == (40, 5) and (counts.sum(axis=1) == 6).all()
    assert (counts[:, [2, 4]] == 0).all()  # bins no record falls in stay empty


def test_degenerate_scores_have_degenerate_intervals() -> None:
    truth = np.array([1] * 20 + [0] * 120)
    perfect = attack_metrics(truth * 2.0 + 1.0, truth, resamples=200, seed=1)
    assert perfect.intervals["auc"] == (1.0, 1.0)
    assert perfect.intervals["tpr_at_1pct"] == (1.0, 1.0)
    tied = attack_metrics(np.zeros(140), truth, resamples=200, seed=1)
    assert tied.intervals["auc"] == (0.5, 0.5) and tied.intervals["advantage"] == (0.0, 0.0)


def test_the_interval_is_seeded_and_leaves_unresolved_figures_empty() -> None:
    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(1, 1, 30), rng.normal(0, 1, 50)]
    truth = np.r_[np.ones(30), np.zeros(50)]
    one = attack_metrics(scores, truth, resamples=300, seed=5)
    assert one.intervals == attack_metrics(scores, truth, resamples=300, seed=5).intervals
    assert one.intervals["auc"] != attack_metrics(scores, truth, 300, seed=6).intervals["auc"]
    low, high = one.intervals["auc"]
    assert low < one.auc < high
    # 50 non-members resolve neither 1% nor 0.1%: no figure, no interval.
    summary = one.summary()
    for key in ("tpr_at_1pct", "tpr_at_01pct"):
        assert math.isnan(summary[key])
        assert math.isnan(summary[f"{key}_ci_low"]) and math.isnan(summary[f"{key}_ci_high"])
    assert attack_metrics(scores, truth).intervals == {}  # no resampling asked


def test_the_auc_interval_has_the_hanley_mcneil_width() -> None:
    # Hanley & McNeil (1982): the standard error of an AUC A from P positives and N
    # negatives; a 95% interval spans about 2 x 1.96 of it.
    rng = np.random.default_rng(11)
    p, n = 200, 400
    scores = np.r_[rng.normal(1.0, 1, p), rng.normal(0, 1, n)]
    truth = np.r_[np.ones(p), np.zeros(n)]
    m = attack_metrics(scores, truth, resamples=2000, seed=0)
    a = m.auc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n))
    low, high = m.intervals["auc"]
    assert (high - low) / (2 * 1.959964) == pytest.approx(se, rel=0.15)


def test_the_intervals_cover_the_true_figures_of_two_gaussians() -> None:
    # Members ~ N(1, 1), non-members ~ N(0, 1): AUC = Phi(1 / sqrt 2), TPR at FPR 1%
    # = 1 - Phi(z_0.99 - 1). Over 120 independent studies, each 95% interval should
    # hold the truth about 114 times (binomial sd 2.4); broken resampling (none, one
    # class only, not seeded per study) falls far outside the band.
    true_auc = norm.cdf(1 / math.sqrt(2))
    true_tpr = 1 - norm.cdf(norm.ppf(0.99) - 1)
    rng = np.random.default_rng(2024)
    truth = np.r_[np.ones(100), np.zeros(400)]
    hits = {"auc": 0, "tpr_at_1pct": 0}
    studies = 120
    for study in range(studies):
        scores = np.r_[rng.normal(1, 1, 100), rng.normal(0, 1, 400)]
        m = attack_metrics(scores, truth, resamples=300, seed=study)
        for key, true in (("auc", true_auc), ("tpr_at_1pct", true_tpr)):
            low, high = m.intervals[key]
            hits[key] += low <= true <= high
    for key, count in hits.items():
        assert 0.87 * studies <= count <= studies, (key, count)


def test_bootstrap_figures_returns_one_value_per_resample() -> None:
    scores = np.arange(10.0)
    truth = (scores > 4).astype(int)
    draws = bootstrap_figures(scores, truth, {"x": 0.5}, resamples=600, seed=0)
    assert set(draws) == {"auc", "advantage", "x"}
    assert all(v.shape == (600,) for v in draws.values())
    assert (draws["auc"] == 1.0).all()


def test_the_settings_are_checked(tmp_path) -> None:
    with pytest.raises(ConfigError, match="attack.negatives"):
        small_config(tmp_path, "attack.negatives=5")
    with pytest.raises(ConfigError, match="attack.bootstrap"):
        small_config(tmp_path, "attack.bootstrap=20")
    config = small_config(tmp_path, "attack.negatives=1000", "attack.bootstrap=0")
    assert (config.attack.negatives, config.attack.bootstrap) == (1000, 0)
    assert small_config(tmp_path).attack.bootstrap == 1000
