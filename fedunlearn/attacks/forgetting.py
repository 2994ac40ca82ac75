"""Distribution-level forgetting against a retrain ensemble: K federations retrained
without the forgotten records (different seeds) give, per forgotten record, the spread
of outputs a perfect unlearning could have produced; a method's output (one seed, or S
seeds) is scored by how far it lies from that spread.

Inputs are outputs on the N forgotten records: ``retrained`` of shape (K, N) and
``method`` of shape (S, N) (or (N,) for one seed), e.g. logit-scaled confidences
(:func:`fedunlearn.attacks.calibrated.logit_confidence`) or margins. Scores:

* :func:`outside_fraction`: per record, the share of the method's seeds whose output
  lies outside the retrain ensemble's central ``coverage`` interval (empirical
  quantiles, linear interpolation); its mean over records is the headline. A method
  indistinguishable from retraining scores about ``1 - coverage`` for large K, more
  for small K (with ``coverage=1`` the interval is the ensemble's range and an
  exchangeable output falls outside with probability exactly ``2 / (K + 1)``).
* :func:`gaussian_klom`: KLoM-style (KL divergence of margins, Georgiev et al.,
  "Attribute-to-delete: machine unlearning via datamodel matching", 2024), here with
  Gaussian fits rather than histograms: per record
  ``KL(N(mu_m, s_m) || N(mu_r, s_r))`` between the method's seeds and the retrained
  models (maximum-likelihood fits); needs S >= 2.
* :func:`challenge_epsilons` and :func:`challenge_score`: the NeurIPS 2023 machine
  unlearning challenge's forgetting metric (Triantafillou et al., code in
  google-deepmind/unlearning_evaluation): per record, an epsilon estimated from the
  false positive and negative rates of threshold attacks telling the method's seeds
  from the retrained models, ``max(log(1 - delta - FPR) - log(FNR),
  log(1 - delta - FNR) - log(FPR))`` over thresholds (thresholds with exactly one of
  FPR and FNR zero dropped, perfect separation = ``cap``); then the score
  ``mean_n 2^-b(eps_n)`` over buckets of width 0.5 up to ``ceil(log(S - 1))`` (records
  beyond score 0). Differences from the challenge: only its single-threshold attacks,
  at every observed value (not its double-threshold family nor its grid), and no
  special case for very peaky distributions; so our epsilons are at most the
  challenge's and the score at least its.

:func:`forgetting_report` gives all three, averaged over records, with percentile
bootstrap intervals: over records (``resample="records"``, the default: the forgotten
records are resampled, the models held fixed) or over models (``resample="models"``:
retrained models and method seeds resampled with replacement). Resampling models
duplicates some of them, which narrows every spread the scores compare against, so
the model bootstrap is biased towards "worse forgetting" (its interval can miss the
point estimate): read it as the scores' sensitivity to the ensemble, not a calibrated
interval. The per-seed share outside the interval (``outside_per_seed``) shows the
spread over method seeds directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedunlearn.attacks._checks import (
    as_array,
    choice,
    integer,
    probability,
    real,
    same_columns,
)


def _pair(method: np.ndarray, retrained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ret = as_array("retrained", retrained, 2)
    m = np.asarray(method, dtype=np.float64)
    m = as_array("method", m[None, :] if m.ndim == 1 else m, 2)
    same_columns("method", m, "retrained", ret.shape[1])
    return m, ret


def outside_fraction(
    method: np.ndarray, retrained: np.ndarray, coverage: float = 0.95
) -> np.ndarray:
    """Per record, the share of method seeds outside the retrain ensemble's central
    ``coverage`` interval.

    Examples
    --------
    >>> retrained = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    >>> outside_fraction(np.array([1.0, 5.0]), retrained, coverage=1.0).tolist()
    [0.0, 1.0]
    """
    m, ret = _pair(method, retrained)
    coverage = probability("coverage", coverage, high_open=False)
    low, high = np.quantile(ret, [(1 - coverage) / 2, (1 + coverage) / 2], axis=0)
    return ((m < low) | (m > high)).mean(axis=0)


def gaussian_klom(method: np.ndarray, retrained: np.ndarray, min_std: float = 1e-6) -> np.ndarray:
    """Per record, ``KL(N(mu_m, s_m) || N(mu_r, s_r))`` of Gaussian fits (ddof=0, scales
    floored at ``min_std``) to the method's seeds and the retrained models.

    Examples
    --------
    Method N(1, 1), retrained N(2, 2): ``log 2 + (1 + 1) / 8 - 1/2``.

    >>> round(float(gaussian_klom(np.array([[0.0], [2.0]]), np.array([[0.0], [4.0]]))[0]), 6)
    0.443147
    """
    m, ret = _pair(method, retrained)
    if m.shape[0] < 2:
        raise ValueError("method needs at least 2 seeds (rows) for a distribution")
    if ret.shape[0] < 2:
        raise ValueError("retrained needs at least 2 models (rows)")
    floor = real("min_std", min_std)
    if floor <= 0:
        raise ValueError(f"min_std must be > 0, got {floor}")
    mu_m, mu_r = m.mean(axis=0), ret.mean(axis=0)
    s_m, s_r = np.maximum(m.std(axis=0), floor), np.maximum(ret.std(axis=0), floor)
    return np.log(s_r / s_m) + (s_m**2 + (mu_m - mu_r) ** 2) / (2 * s_r**2) - 0.5


def challenge_epsilons(
    method: np.ndarray, retrained: np.ndarray, delta: float = 1e-5, cap: float = 50.0
) -> np.ndarray:
    """Per-record epsilon of the best single-threshold attack telling the method's seeds
    from the retrained models (NeurIPS 2023 unlearning challenge), in ``[0, cap]``.

    The "positive" group of a record is the one with the larger median; a threshold t
    predicts positive for outputs ``>= t``; every observed output is a threshold.

    Examples
    --------
    Seeds 0..3 against retrained 2..5: at t = 3, FPR = FNR = 1/4, so
    ``eps = log((0.75 - delta) / 0.25)``.

    >>> eps = challenge_epsilons(np.arange(4.0)[:, None], np.arange(2.0, 6.0)[:, None])
    >>> round(float(eps[0]), 4)
    1.0986
    """
    m, ret = _pair(method, retrained)
    delta = probability("delta", delta, low_open=False)
    cap = real("cap", cap)
    if cap <= 0:
        raise ValueError(f"cap must be > 0, got {cap}")
    rows = m.shape[0] + ret.shape[0]
    step = max(1, _CHUNK // (rows * max(m.shape[0], ret.shape[0])))
    return np.concatenate(
        [
            _challenge_chunk(m[:, start : start + step], ret[:, start : start + step], delta, cap)
            for start in range(0, m.shape[1], step)
        ]
    )


_CHUNK = 1 << 24
"""Comparisons held in memory at once by :func:`challenge_epsilons` (records are
processed in chunks of at most this many seed-threshold-record triples)."""


def _challenge_chunk(m: np.ndarray, ret: np.ndarray, delta: float, cap: float) -> np.ndarray:
    thresholds = np.concatenate([m, ret])  # (S + K, n): every observed output
    rate_m = (m[:, None, :] >= thresholds[None]).mean(axis=0)
    rate_r = (ret[:, None, :] >= thresholds[None]).mean(axis=0)
    retrained_positive = np.median(ret, axis=0) > np.median(m, axis=0)
    tpr = np.where(retrained_positive, rate_r, rate_m)
    fpr = np.where(retrained_positive, rate_m, rate_r)
    return _best(tpr, fpr, delta, cap)


def _best(tpr: np.ndarray, fpr: np.ndarray, delta: float, cap: float) -> np.ndarray:
    """Best epsilon per column over the rows (thresholds) of ``tpr`` and ``fpr``."""
    fnr = 1.0 - tpr
    with np.errstate(divide="ignore", invalid="ignore"):
        one = np.log(1 - delta - fpr) - np.log(fnr)
        two = np.log(1 - delta - fnr) - np.log(fpr)
    eps = np.clip(np.fmax(one, two), 0, None)
    perfect = (fpr == 0) & (fnr == 0)
    eps = np.where(perfect, cap, np.where((fpr == 0) | (fnr == 0), np.nan, eps))
    eps = np.where(np.isnan(eps), 0.0, eps)
    return np.clip(eps.max(axis=0), 0, cap)


def challenge_score(epsilons: np.ndarray, n_method_models: int) -> float:
    """The challenge's forgetting score from per-record epsilons: ``2^-b`` per record for
    its bucket ``b`` of width 0.5 (0 beyond ``ceil(log(S - 1))``), averaged. 1 is best.

    Examples
    --------
    With S = 4 models the buckets end at ceil(log 3) = 2: [0, .5) scores 1, [.5, 1)
    1/2, [1, 1.5) 1/4, [1.5, 2) 1/8, beyond 0.

    >>> challenge_score(np.array([0.1, 1.09858, 3.0]), n_method_models=4)
    0.4166666666666667
    """
    eps = as_array("epsilons", epsilons, 1)
    models = integer("n_method_models", n_method_models, 3)
    top = np.ceil(np.log(models - 1))
    buckets = int(top / 0.5)  # buckets [0, .5), [.5, 1), ... ending at or before top
    index = np.floor(np.clip(eps, 0, None) / 0.5)
    points = np.where(index < buckets, 0.5**index, 0.0)
    return float(points.mean())


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class ForgettingReport:
    """Result of :func:`forgetting_report`: aggregates (means over records) with
    intervals (``klom`` and ``challenge`` are None with fewer than 2 or 3 method
    seeds), per-record scores, and the share of records outside per method seed."""

    outside: Estimate
    klom: Estimate | None
    challenge: Estimate | None
    outside_per_record: np.ndarray
    outside_per_seed: np.ndarray
    klom_per_record: np.ndarray | None
    epsilon_per_record: np.ndarray | None
    method_seeds: int
    retrained_models: int
    coverage: float
    confidence: float
    resample: str


def _per_record(m: np.ndarray, ret: np.ndarray, coverage: float, delta: float) -> list:
    seeds = m.shape[0]
    return [
        outside_fraction(m, ret, coverage),
        gaussian_klom(m, ret) if seeds >= 2 else None,
        challenge_epsilons(m, ret, delta) if seeds >= 3 else None,
    ]


def _aggregate(scores: list, seeds: int, columns: np.ndarray | slice = slice(None)) -> list:
    outside, klom, eps = scores
    return [
        float(outside[columns].mean()),
        np.nan if klom is None else float(klom[columns].mean()),
        np.nan if eps is None else challenge_score(eps[columns], seeds),
    ]


def forgetting_report(
    method: np.ndarray,
    retrained: np.ndarray,
    *,
    coverage: float = 0.95,
    delta: float = 1e-5,
    resample: str = "records",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ForgettingReport:
    """All three forgetting scores, averaged over records, with percentile bootstrap
    intervals (``resample``: ``"records"`` or ``"models"``, see the module notes).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> outputs = rng.normal(size=(20, 50))   # method and retraining: one distribution
    >>> report = forgetting_report(outputs[:10], outputs[10:], n_boot=200)
    >>> bool(report.outside.low <= report.outside.value <= report.outside.high)
    True
    >>> shifted = forgetting_report(outputs[:10] + 3, outputs[10:], n_boot=200)
    >>> bool(shifted.outside.low > report.outside.high)
    True
    """
    m, ret = _pair(method, retrained)
    coverage = probability("coverage", coverage, high_open=False)
    delta = probability("delta", delta, low_open=False)
    resample = choice("resample", resample, ("records", "models"))
    n_boot = integer("n_boot", n_boot, 1)
    confidence = probability("confidence", confidence)
    rng = np.random.default_rng(integer("seed", seed))
    seeds = m.shape[0]
    scores = _per_record(m, ret, coverage, delta)
    point = _aggregate(scores, seeds)
    replicates = []
    for _ in range(n_boot):
        if resample == "records":
            columns = rng.integers(0, m.shape[1], m.shape[1])
            replicates.append(_aggregate(scores, seeds, columns))
        else:
            rows_m = rng.integers(0, seeds, seeds)
            rows_r = rng.integers(0, ret.shape[0], ret.shape[0])
            again = _per_record(m[rows_m], ret[rows_r], coverage, delta)
            replicates.append(_aggregate(again, seeds))
    tails = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    bounds = np.percentile(np.array(replicates), tails, axis=0)
    estimates = [
        None if np.isnan(value) else Estimate(value, float(bounds[0, i]), float(bounds[1, i]))
        for i, value in enumerate(point)
    ]
    assert estimates[0] is not None
    low, high = np.quantile(ret, [(1 - coverage) / 2, (1 + coverage) / 2], axis=0)
    return ForgettingReport(
        outside=estimates[0],
        klom=estimates[1],
        challenge=estimates[2],
        outside_per_record=scores[0],
        outside_per_seed=((m < low) | (m > high)).mean(axis=1),
        klom_per_record=scores[1],
        epsilon_per_record=scores[2],
        method_seeds=seeds,
        retrained_models=ret.shape[0],
        coverage=coverage,
        confidence=confidence,
        resample=resample,
    )
