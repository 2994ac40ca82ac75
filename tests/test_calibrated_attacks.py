"""Calibrated attacks (LiRA, U-LiRA, RMIA, the per-client test) and the forgetting
scores against a retrain ensemble, each checked against a case worked out by hand or
with scipy.stats directly."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import softmax
from sklearn.metrics import roc_auc_score

from fedunlearn.attacks import (
    RMIA,
    LiRA,
    ULiRA,
    calibrated,
    challenge_epsilons,
    challenge_score,
    client_scores,
    fit_gaussians,
    forgetting,
    forgetting_report,
    gaussian_klom,
    logit_confidence,
    logit_confidence_from_proba,
    outside_fraction,
    rmia,
)
from fedunlearn.attacks.calibrated import chi2_logsf


@pytest.mark.parametrize("module", [calibrated, rmia, forgetting], ids=lambda m: m.__name__)
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0


# --- logit-scaled confidence -------------------------------------------------------


def test_logit_confidence_is_log_odds_of_the_true_class() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)) * 3
    labels = rng.integers(0, 4, 6)
    p = softmax(logits, axis=1)[np.arange(6), labels]
    np.testing.assert_allclose(logit_confidence(logits, labels), np.log(p / (1 - p)))
    np.testing.assert_allclose(logit_confidence(logits + 100.0, labels), np.log(p / (1 - p)))
    np.testing.assert_allclose(
        logit_confidence_from_proba(softmax(logits, axis=1), labels), np.log(p / (1 - p))
    )


def test_logit_confidence_stays_exact_where_one_minus_p_underflows() -> None:
    # p = softmax([800, 0, 0])_0: 1 - p = 2 e^-800 underflows; phi = 800 - log 2.
    phi = logit_confidence(np.array([[800.0, 0.0, 0.0]]), np.array([0]))
    assert phi[0] == pytest.approx(800 - np.log(2))


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((2, 3)), np.array([0, 3]), "labels"),
        (np.zeros((2, 3)), np.array([0]), "labels"),
        (np.zeros((2, 1)), np.array([0, 0]), "2 classes"),
        (np.zeros(3), np.array([0]), "logits"),
        (np.array([[np.inf, 0.0]]), np.array([0]), "logits"),
    ],
)
def test_logit_confidence_names_the_bad_argument(logits, labels, match) -> None:
    with pytest.raises(ValueError, match=match):
        logit_confidence(logits, labels)


# --- LiRA -----------------------------------------------------------------------------

REFS = np.array([[3.0, 0.0], [5.0, 2.0], [0.0, 4.0], [2.0, 6.0]])
IN = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)
# record 0: IN {3, 5} -> N(4, 1), OUT {0, 2} -> N(1, 1)
# record 1: IN {4, 6} -> N(5, 1), OUT {0, 2} -> N(1, 1)


def test_online_lira_is_the_gaussian_log_likelihood_ratio_by_hand() -> None:
    scores = LiRA().fit(REFS, IN).score(np.array([4.0, 1.0]))
    # record 0 at 4: log N(4;4,1) - log N(4;1,1) = 0 - (-(3^2)/2) = 4.5
    # record 1 at 1: -(4^2)/2 - 0 = -8
    np.testing.assert_allclose(scores, [4.5, -8.0])
    target = np.array([2.5, 3.7])
    expected = stats.norm.logpdf(target, [4, 5], 1) - stats.norm.logpdf(target, [1, 1], 1)
    np.testing.assert_allclose(LiRA().fit(REFS, IN).score(target), expected)


def test_offline_lira_is_the_one_sided_p_value_against_out() -> None:
    attack = LiRA(online=False).fit(REFS, IN)
    # record 0 at 3 against OUT N(1, 1): P[Z >= 3] = sf(2) = 0.02275
    scores = attack.score(np.array([3.0, 1.0]))
    np.testing.assert_allclose(scores, [-np.log(stats.norm.sf(2.0)), np.log(2.0)])
    assert -np.log(0.02275) == pytest.approx(scores[0], abs=1e-3)
    # no IN references needed offline
    # rows 0 and 1 alone, all OUT: record 0 {3, 5} -> N(4, 1), record 1 {0, 2} -> N(1, 1)
    out_only = LiRA(online=False).fit(REFS[[0, 1]]).score(np.array([3.0, 1.0]))
    np.testing.assert_allclose(out_only, [-np.log(stats.norm.sf(-1.0)), np.log(2.0)])


def test_global_variance_pools_within_record_spread() -> None:
    # IN deviations from each record's mean: record 0 (3, 5) -> 1 + 1; record 1 (4, 6)
    # -> 1 + 1; pooled variance 4 / (1 + 1) = 2. OUT: (0, 2) and (0, 2): also 2.
    location, scale = fit_gaussians(REFS, IN, global_variance=True)
    np.testing.assert_allclose(location, [4.0, 5.0])
    np.testing.assert_allclose(scale, [np.sqrt(2), np.sqrt(2)])
    got = LiRA(global_variance=True).fit(REFS, IN).score(np.array([4.0, 1.0]))
    s = np.sqrt(2)
    expected = stats.norm.logpdf([4, 1], [4, 5], s) - stats.norm.logpdf([4, 1], [1, 1], s)
    np.testing.assert_allclose(got, expected)


def test_global_variance_works_with_one_reference_per_side_for_some_records() -> None:
    refs = np.array([[3.0, 7.0], [5.0, np.nan], [0.0, 1.0], [2.0, np.nan]])
    mask = np.array([[1, 1], [1, 0], [0, 0], [0, 0]], dtype=bool)
    with pytest.raises(ValueError, match="global_variance"):
        LiRA().fit(refs, mask)
    attack = LiRA(global_variance=True).fit(refs, mask)
    # record 1: IN {7}, OUT {1}; pooled variances from record 0 alone: IN {3, 5} and
    # OUT {0, 2} each (1 + 1) / (2 - 1) = 2. At 7: 0 - (-(7 - 1)^2 / (2 * 2)) = 9.
    np.testing.assert_allclose(attack.score(np.array([4.0, 7.0]))[1], 9.0)


def test_median_center_and_missing_scores() -> None:
    refs = np.array([[0.0], [1.0], [10.0], [np.nan]])
    location, scale = fit_gaussians(refs, np.ones((4, 1), bool), center="median")
    assert location[0] == 1.0
    assert scale[0] == pytest.approx(np.std([0.0, 1.0, 10.0]))


def test_calibration_beats_a_global_threshold_when_records_differ() -> None:
    # Each record has its own difficulty mu_n; membership adds +1 to phi. A global
    # threshold on phi barely sees it; LiRA, which knows each record's spread, does.
    rng = np.random.default_rng(1)
    n, k = 400, 16
    mu = rng.normal(0, 5, n)
    mask = rng.random((k, n)) < 0.5
    refs = mu + mask + rng.normal(0, 0.3, (k, n))
    member = rng.random(n) < 0.5
    target = mu + member + rng.normal(0, 0.3, n)
    lira = roc_auc_score(member, LiRA().fit(refs, mask).score(target))
    offline = roc_auc_score(member, LiRA(online=False).fit(refs, mask).score(target))
    assert roc_auc_score(member, target) < 0.6
    assert lira > 0.95 and offline > 0.9


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: LiRA().fit(REFS, IN[:, :1]), ValueError, "in_mask"),
        (lambda: LiRA().fit(REFS), ValueError, "in_mask is required"),
        (lambda: LiRA().fit(REFS[:, 0], IN[:, 0]), ValueError, "reference_scores"),
        (lambda: LiRA().fit(REFS, IN * 2), ValueError, "in_mask"),
        (lambda: LiRA().score(np.zeros(2)), RuntimeError, "fit"),
        (lambda: LiRA().fit(REFS, IN).score(np.zeros(3)), ValueError, "target_scores"),
        (lambda: LiRA().fit(REFS, IN).score(np.array([0.0, np.nan])), ValueError, "target"),
        (lambda: LiRA(online="yes"), TypeError, "online"),
        (lambda: LiRA(center="mode"), ValueError, "center"),
        (lambda: LiRA(min_std=0), ValueError, "min_std"),
        (
            lambda: LiRA().fit(REFS[:3], IN[:3]),
            ValueError,
            r"reference_scores \(OUT\): record 0 has 1",
        ),
    ],
)
def test_lira_validates_every_argument(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --- U-LiRA ---------------------------------------------------------------------------


def test_ulira_by_hand() -> None:
    unlearned = np.array([[1.0, 0.0], [3.0, 2.0]])  # N(2, 1), N(1, 1)
    retrained = np.array([[-1.0, 0.0], [1.0, 4.0], [np.nan, 2.0]])  # N(0, 1), N(2, s)
    s = np.std([0.0, 4.0, 2.0])
    scores = ULiRA().fit(unlearned, retrained).score(np.array([2.0, 1.0]))
    expected_1 = stats.norm.logpdf(1.0, 1.0, 1.0) - stats.norm.logpdf(1.0, 2.0, s)
    np.testing.assert_allclose(scores, [0 - (-(2**2) / 2), expected_1])


def test_ulira_separates_an_inexact_method_from_an_exact_one() -> None:
    rng = np.random.default_rng(2)
    n = 300
    mu = rng.normal(0, 3, n)
    retrained = mu + rng.normal(0, 0.5, (8, n))
    unlearned = mu + 1.5 + rng.normal(0, 0.5, (8, n))  # the method leaves a trace
    attack = ULiRA().fit(unlearned, retrained)
    from_method = attack.score(mu + 1.5 + rng.normal(0, 0.5, n))
    from_retraining = attack.score(mu + rng.normal(0, 0.5, n))
    truth = np.r_[np.ones(n), np.zeros(n)]
    assert roc_auc_score(truth, np.r_[from_method, from_retraining]) > 0.9
    assert from_retraining.mean() < 0 < from_method.mean()


def test_ulira_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="retrained_scores covers 3 records"):
        ULiRA().fit(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unlearned_scores"):
        ULiRA().fit(np.array([[np.inf]]), np.zeros((2, 1)))


# --- per-client test ------------------------------------------------------------------


def test_client_scores_sum_mean_and_fisher_by_hand() -> None:
    scores, owners = np.array([1.0, 3.0, -2.0, 0.5]), np.array([7, 7, 9, 8])
    ids, total = client_scores(scores, owners, reduce="sum")
    assert ids.tolist() == [7, 8, 9] and total.tolist() == [4.0, 0.5, -2.0]
    assert client_scores(scores, owners)[1].tolist() == [2.0, 0.5, -2.0]
    # Two records with p = 1/2: X = 2 (2 log 2) = 4 log 2 ~ chi2(4), whose survival is
    # e^(-X/2) (1 + X/2) = (1 + 2 log 2) / 4.
    _, fisher = client_scores(np.log([2.0, 2.0]), np.array([0, 0]), reduce="fisher")
    assert fisher[0] == pytest.approx(-np.log((1 + 2 * np.log(2)) / 4))


def test_fisher_stays_finite_where_scipy_underflows() -> None:
    # chi2 with 2 and 4 degrees of freedom has closed tails: exp(-x/2) and
    # exp(-x/2)(1 + x/2); at x = 1e5 SciPy's logsf is -inf.
    x = np.array([1e5, 1e5, 50.0])
    assert np.isinf(stats.chi2.logsf(x[:2], [2, 4])).all()
    got = chi2_logsf(x, np.array([2, 4, 6]))
    assert got[0] == pytest.approx(-5e4, rel=1e-12)
    assert got[1] == pytest.approx(-5e4 + np.log1p(5e4), rel=1e-12)
    assert got[2] == stats.chi2.logsf(50.0, 6)  # finite: SciPy's own
    _, fisher = client_scores(np.full(2, 5e4), np.zeros(2, int), reduce="fisher")
    assert fisher[0] == pytest.approx(1e5 - np.log1p(1e5), rel=1e-12)  # 4 dof, x = 2e5


def test_client_scores_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="clients must have shape"):
        client_scores(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="reduce"):
        client_scores(np.zeros(2), np.zeros(2), reduce="max")
    with pytest.raises(ValueError, match="fisher"):
        client_scores(np.array([-1.0]), np.array([0]), reduce="fisher")


# --- RMIA -----------------------------------------------------------------------------


def _rmia_by_hand(target, px, pop_target, pz, gamma):
    """The paper's definition, pair by pair."""
    out = []
    for x, base_x in zip(target, px, strict=True):
        wins = [
            (x / base_x) / (z / base_z) >= gamma for z, base_z in zip(pop_target, pz, strict=True)
        ]
        out.append(np.mean(wins))
    return np.array(out)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_offline_rmia_matches_the_pairwise_definition(gamma) -> None:
    rng = np.random.default_rng(3)
    ref, pop_ref = rng.random((3, 20)), rng.random((3, 30))
    target, pop_target = rng.random(20), rng.random(30)
    a = 0.3
    px = ((1 + a) * ref.mean(axis=0) + (1 - a)) / 2
    pz = ((1 + a) * pop_ref.mean(axis=0) + (1 - a)) / 2
    got = RMIA(offline_a=a, gamma=gamma).fit(ref, pop_ref).score(target, pop_target)
    np.testing.assert_allclose(got, _rmia_by_hand(target, px, pop_target, pz, gamma))


def test_offline_rmia_ignores_in_references() -> None:
    ref = np.array([[0.9, 0.2], [0.5, 0.4], [0.3, 0.8]])
    mask = np.array([[1, 0], [0, 0], [0, 1]], dtype=bool)
    attack = RMIA(offline_a=0.5).fit(ref, np.array([[0.5], [0.5], [0.5]]), in_mask=mask)
    # OUT means: record 0 (0.5 + 0.3) / 2 = 0.4, record 1 (0.2 + 0.4) / 2 = 0.3
    expected = np.log(((1.5 * np.array([0.4, 0.3])) + 0.5) / 2)
    np.testing.assert_allclose(attack.log_px_, expected)


def test_online_rmia_weighs_in_and_out_halves_equally() -> None:
    ref = np.array([[0.9, 0.2], [0.5, 0.4], [0.3, 0.8]])
    mask = np.array([[1, 0], [0, 1], [0, 1]], dtype=bool)
    attack = RMIA(offline_a=None).fit(ref, np.array([[0.2], [0.4], [0.6]]), in_mask=mask)
    # record 0: (0.9 + (0.5 + 0.3) / 2) / 2 = 0.65; record 1: ((0.4 + 0.8) / 2 + 0.2) / 2 = 0.4
    np.testing.assert_allclose(np.exp(attack.log_px_), [0.65, 0.4])
    np.testing.assert_allclose(np.exp(attack.log_pz_), [0.4])
    plain = RMIA(offline_a=None).fit(ref, np.array([[0.2], [0.4], [0.6]]))
    np.testing.assert_allclose(np.exp(plain.log_px_), ref.mean(axis=0))


def test_rmia_counts_ties_as_wins() -> None:
    attack = RMIA(offline_a=1.0).fit(np.array([[0.5]]), np.array([[0.5, 0.5]]))
    # a = 1: Pr(.) = Pr_out(.); ratios x = 1, z = (1, 2): LR = 1 and 1/2
    assert attack.score(np.array([0.5]), np.array([0.5, 1.0])).tolist() == [0.5]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: RMIA(offline_a=1.5), "offline_a"),
        (lambda: RMIA(gamma=0), "gamma"),
        (lambda: RMIA().fit(np.full((2, 3), 1.5), np.ones((2, 4))), "reference_proba"),
        (lambda: RMIA().fit(np.ones((2, 3)), np.ones((3, 4))), "population_reference_proba"),
        (lambda: RMIA().fit(np.ones((1, 2)), np.ones((1, 2)), in_mask=[[1, 0]]), "OUT"),
        (lambda: RMIA(offline_a=None).fit(np.ones((2, 1)), np.ones((2, 2)), [[0], [0]]), "IN"),
        (
            lambda: RMIA().fit(np.ones((1, 2)), np.ones((1, 2))).score(np.ones(3), np.ones(2)),
            "target_proba",
        ),
        (
            lambda: RMIA().fit(np.ones((1, 2)), np.ones((1, 2))).score(np.ones(2), np.ones(3)),
            "population_target_proba",
        ),
    ],
)
def test_rmia_validates_every_argument(call, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_rmia_must_be_fitted_first() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        RMIA().score(np.ones(2), np.ones(2))


# --- forgetting against a retrain ensemble --------------------------------------------


def test_outside_fraction_by_hand() -> None:
    retrained = np.arange(11.0)[:, None] * np.ones((1, 2))  # 0..10 per record
    # central 80%: quantiles 0.1 and 0.9 = 1 and 9
    method = np.array([[0.5, 5.0], [9.5, 9.0], [5.0, 10.0]])
    assert outside_fraction(method, retrained, coverage=0.8).tolist() == [2 / 3, 1 / 3]


def test_gaussian_klom_matches_numerical_integration() -> None:
    method, retrained = np.array([[0.0], [2.0]]), np.array([[0.0], [4.0]])  # N(1,1), N(2,2)
    p, q = stats.norm(1, 1), stats.norm(2, 2)
    kl, _ = integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), -20, 20)
    assert gaussian_klom(method, retrained)[0] == pytest.approx(kl, rel=1e-6)
    assert gaussian_klom(retrained, retrained)[0] == pytest.approx(0.0)


def test_challenge_epsilon_by_hand() -> None:
    # method 0..3, retrained 2..5 (the positive group: larger median). Thresholds
    # t = 0, 1, 2: FNR = 0, dropped; t = 4, 5: FPR = 0, dropped; t = 3: TPR = 3/4,
    # FPR = 1/4 -> max(log(1 - d - 1/4) - log(1/4), same) = log((3/4 - d) / (1/4)).
    d = 1e-5
    eps = challenge_epsilons(np.arange(4.0)[:, None], np.arange(2.0, 6.0)[:, None], delta=d)
    assert eps[0] == pytest.approx(np.log((0.75 - d) / 0.25))
    # the same with the groups swapped: still one threshold, same rates
    swapped = challenge_epsilons(np.arange(2.0, 6.0)[:, None], np.arange(4.0)[:, None], delta=d)
    assert swapped[0] == pytest.approx(np.log((0.75 - d) / 0.25))


def test_challenge_epsilon_extremes() -> None:
    far = challenge_epsilons(100 + np.arange(5.0)[:, None], np.arange(5.0)[:, None])
    assert far[0] == 50.0  # perfect separation: the cap
    same = challenge_epsilons(np.arange(5.0)[:, None], np.arange(5.0)[:, None])
    assert same[0] == 0.0


def test_challenge_score_by_hand() -> None:
    # S = 9: buckets up to ceil(log 8) = 3: [0,.5) 1, [.5,1) 1/2, ..., [2.5,3) 1/32
    eps = np.array([0.0, 0.7, 2.6, 3.0, 49.0])
    assert challenge_score(eps, 9) == pytest.approx((1 + 0.5 + 1 / 32) / 5)
    with pytest.raises(ValueError, match="n_method_models"):
        challenge_score(eps, 2)


def test_forgetting_report_tells_a_method_that_forgets_from_one_that_does_not() -> None:
    rng = np.random.default_rng(4)
    n = 100
    mu = rng.normal(0, 2, n)
    retrained = mu + rng.normal(0, 1, (10, n))
    exact = mu + rng.normal(0, 1, (10, n))
    lazy = mu + 2.5 + rng.normal(0, 1, (10, n))
    good = forgetting_report(exact, retrained, n_boot=200)
    bad = forgetting_report(lazy, retrained, n_boot=200)
    assert good.outside.high < bad.outside.low
    assert good.klom.high < bad.klom.low
    assert good.challenge.low > bad.challenge.high
    assert good.outside_per_seed.shape == (10,)
    for est in (good.outside, good.klom, good.challenge):
        assert est.low <= est.value <= est.high
    models = forgetting_report(exact, retrained, resample="models", n_boot=20)
    assert models.resample == "models" and models.challenge is not None


def test_forgetting_report_with_one_method_seed() -> None:
    retrained = np.random.default_rng(5).normal(size=(10, 40))
    report = forgetting_report(retrained[0], retrained[1:], n_boot=50)
    assert report.klom is None and report.challenge is None
    assert report.method_seeds == 1 and report.outside_per_record.shape == (40,)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: outside_fraction(np.zeros(3), np.zeros((4, 2))), "method covers 3"),
        (lambda: outside_fraction(np.zeros(2), np.zeros((4, 2)), coverage=0), "coverage"),
        (lambda: gaussian_klom(np.zeros((1, 2)), np.zeros((4, 2))), "2 seeds"),
        (lambda: challenge_epsilons(np.zeros((3, 2)), np.zeros((4, 2)), delta=1), "delta"),
        (lambda: forgetting_report(np.zeros(2), np.zeros((4, 2)), resample="x"), "resample"),
        (lambda: forgetting_report(np.zeros(2), np.zeros((4, 2)), n_boot=0), "n_boot"),
        (lambda: forgetting_report(np.zeros(2), np.full((4, 2), np.nan)), "retrained"),
    ],
)
def test_forgetting_scores_validate_their_arguments(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_fit_gaussians_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="mask must have shape"):
        fit_gaussians(REFS, IN[:2])
    with pytest.raises(ValueError, match="center"):
        fit_gaussians(REFS, IN, center="mode")
    with pytest.raises(ValueError, match="my_scores"):
        fit_gaussians(REFS[0], IN[0], name="my_scores")


def test_challenge_epsilons_do_not_depend_on_chunking(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    method, retrained = rng.normal(size=(5, 300)), rng.normal(0.5, 1, size=(7, 300))
    whole = challenge_epsilons(method, retrained)
    monkeypatch.setattr(forgetting, "_CHUNK", 100)  # two records at a time
    np.testing.assert_array_equal(challenge_epsilons(method, retrained), whole)
