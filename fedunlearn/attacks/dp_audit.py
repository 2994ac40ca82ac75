"""Empirical DP audit in one training run (Steinke, Nasr and Jagielski, "Privacy auditing
with one (1) training run", NeurIPS 2023): a lower bound on epsilon from canaries, to set
next to the accountant's epsilon.

The game: m canaries, each included in the training data independently with
probability 1/2. After training, an auditor that does not know the inclusions guesses
"in" for some canaries, "out" for others and abstains on the rest: r guesses, v of them
correct. If the training is (epsilon, delta)-DP, the number of correct guesses is
dominated by a Binomial(r, p), ``p = e^eps / (1 + e^eps)`` (the accuracy of epsilon
randomized response), plus a term for delta; seeing v correct guesses when that is
unlikely (probability below ``beta``) refutes (epsilon, delta)-DP. The bound is the
largest epsilon so refuted, at confidence ``1 - beta``.

* :func:`one_run_p_value`: the probability of >= v correct guesses under
  (epsilon, delta)-DP, the paper's bound including delta > 0:
  ``P[Bin(r, p) >= v] + 2 m delta max_{i=1..v} P[v - i <= Bin(r, p) < v] / i``,
  as in the authors' published algorithm;
* :func:`one_run_epsilon`: the lower bound from (m, r, v);
* :func:`one_run_audit`: from per-canary scores (higher: "in") and the inclusion
  truth, guesses the top k+ scores "in" and the bottom k- "out" for every (k+, k-) on a
  small grid and keeps the best bound; each bound is computed at ``beta / G`` for a
  grid of G pairs (Bonferroni), so the maximum is still a valid ``1 - beta`` bound.

Where the canaries go, and which accountant's epsilon the bound faces:

* local DP (a client's DP-SGD): canaries in one client's data; compare with that
  client's accountant;
* central DP (server-side clipping and noise): canary records or canary clients across
  the federation; compare with the central accountant;
* the unlearning release: canaries are put in the forget request with probability 1/2
  and scored from the models before and after (e.g. the drop in their confidence);
  the mechanism audited is the release of the unlearned model, to compare with the
  method's certified epsilon, if it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import expit

from fedunlearn.attacks._checks import as_array, as_mask, choice, integer, probability, real

DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
"""Default grid of k+ (and k-) as fractions of the canaries."""


def _check_counts(m: int, r: int, v: int) -> tuple[int, int, int]:
    m = integer("m", m, 1)
    r = integer("r", r, 0)
    v = integer("v", v, 0)
    if r > m:
        raise ValueError(f"r (guesses, {r}) cannot exceed m (canaries, {m})")
    if v > r:
        raise ValueError(f"v (correct guesses, {v}) cannot exceed r (guesses, {r})")
    return m, r, v


def one_run_p_value(m: int, r: int, v: int, epsilon: float, delta: float = 0.0) -> float:
    """Probability of at least ``v`` correct guesses out of ``r`` under (epsilon, delta)-DP.

    Parameters
    ----------
    m : int
        Number of canaries (each included with probability 1/2).
    r : int
        Number of guesses (abstentions excluded).
    v : int
        Number of correct guesses.
    epsilon, delta : float
        The DP claim under test.

    Examples
    --------
    All 3 guesses right at epsilon = 0 (coin flips): 1/8.

    >>> one_run_p_value(m=10, r=3, v=3, epsilon=0.0)
    0.125
    """
    m, r, v = _check_counts(m, r, v)
    epsilon = real("epsilon", epsilon)
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    delta = probability("delta", delta, low_open=False, high_open=False)
    if v == 0:
        return 1.0
    p = float(expit(epsilon))
    tail = float(stats.binom.sf(v - 1, r, p))  # P[Bin(r, p) >= v]
    if delta == 0:
        return min(tail, 1.0)
    i = np.arange(1, v + 1)
    # P[v - i <= Bin < v] = P[Bin >= v - i] - P[Bin >= v]
    window = stats.binom.sf(v - i - 1, r, p) - tail
    alpha = max(float(np.max(window / i)), 0.0)
    return min(tail + alpha * delta * 2 * m, 1.0)


def one_run_epsilon(
    m: int, r: int, v: int, delta: float = 0.0, beta: float = 0.05, tol: float = 1e-6
) -> float:
    """Lower bound on epsilon at confidence ``1 - beta`` from ``v`` of ``r`` correct guesses.

    Bisection keeps ``one_run_p_value(lo) < beta``, so the value returned is always a
    refuted epsilon (hence a valid bound: (eps', delta)-DP with eps' < eps would imply
    (eps, delta)-DP), within ``tol`` of the largest one. 0 when nothing is refuted.

    Examples
    --------
    Ten guesses, all correct, delta = 0: the bound solves ``p^10 = 0.05``.

    >>> eps = one_run_epsilon(m=100, r=10, v=10)
    >>> p = 0.05 ** (1 / 10)
    >>> round(eps, 4), round(float(np.log(p / (1 - p))), 4)
    (1.0519, 1.0519)
    """
    m, r, v = _check_counts(m, r, v)
    delta = probability("delta", delta, low_open=False, high_open=False)
    beta = probability("beta", beta)
    tol = real("tol", tol)
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if one_run_p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while one_run_p_value(m, r, v, hi, delta) < beta:
        lo, hi = hi, 2 * hi
        if hi > 1e3:  # p rounds to 1 long before: nothing left to refute
            return lo
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if one_run_p_value(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class OneRunAudit:
    """Result of :func:`one_run_audit`.

    ``epsilon_lower`` is the audited bound (valid at confidence ``1 - beta`` over the
    whole grid), reached by guessing the ``k_plus`` highest scores "in" and the
    ``k_minus`` lowest "out": ``guesses`` guesses, ``correct`` right.
    ``epsilon_accounted`` is the accountant's epsilon if given, and ``ratio`` the
    share of it the audit reaches.
    """

    epsilon_lower: float
    k_plus: int
    k_minus: int
    guesses: int
    correct: int
    canaries: int
    delta: float
    beta: float
    grid_size: int
    correction: str
    epsilon_accounted: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.epsilon_accounted is None or self.epsilon_accounted == 0:
            return None
        return self.epsilon_lower / self.epsilon_accounted


def _grid(m: int, k_plus: Sequence[int] | None, k_minus: Sequence[int] | None) -> list:
    default = sorted({max(1, round(f * m)) for f in DEFAULT_FRACTIONS})
    plus = default if k_plus is None else [integer("k_plus", k, 0) for k in k_plus]
    minus = default if k_minus is None else [integer("k_minus", k, 0) for k in k_minus]
    pairs = [(a, b) for a in sorted(set(plus)) for b in sorted(set(minus)) if 0 < a + b <= m]
    if not pairs:
        raise ValueError(f"k_plus and k_minus give no (k+, k-) with 0 < k+ + k- <= m = {m}")
    return pairs


def one_run_audit(
    scores: np.ndarray,
    included: np.ndarray,
    *,
    delta: float = 0.0,
    beta: float = 0.05,
    k_plus: Sequence[int] | None = None,
    k_minus: Sequence[int] | None = None,
    correction: str = "bonferroni",
    epsilon_accounted: float | None = None,
) -> OneRunAudit:
    """One-run audit from per-canary scores: the best bound over a grid of (k+, k-).

    Parameters
    ----------
    scores : array of shape (m,)
        The auditor's score per canary, computed without the truth (higher: "in").
        Ties are broken by position: shuffle first if positions carry information.
    included : boolean array of shape (m,)
        Whether each canary was in the training data (drawn with probability 1/2).
    delta, beta : float
        The delta of the claim under test and the confidence level ``1 - beta``.
    k_plus, k_minus : sequences of int, optional
        Grid of how many top scores to guess "in" and bottom scores "out"
        (default: 1, 2, 5, 10, 20 and 50% of m, each). Pairs with ``k+ + k- > m`` drop.
    correction : "bonferroni" or "none"
        ``"bonferroni"`` tests every pair at ``beta / G``, which keeps the maximum valid;
        ``"none"`` reports the best pair at ``beta`` (optimistic: not a valid bound).
    epsilon_accounted : float, optional
        The accountant's epsilon, reported alongside.

    Examples
    --------
    >>> scores = np.arange(20.0)           # canaries 10..19 score highest
    >>> truth = np.arange(20) >= 10        # ...and are exactly the included ones
    >>> audit = one_run_audit(scores, truth, k_plus=[10], k_minus=[10])
    >>> audit.correct, audit.guesses, round(audit.epsilon_lower, 3)  # p^20 = 0.05
    (20, 20, 1.823)
    """
    s = as_array("scores", scores, 1)
    truth = as_mask("included", included, s.shape)
    delta = probability("delta", delta, low_open=False, high_open=False)
    beta = probability("beta", beta)
    correction = choice("correction", correction, ("bonferroni", "none"))
    if epsilon_accounted is not None:
        epsilon_accounted = real("epsilon_accounted", epsilon_accounted)
    m = s.size
    pairs = _grid(m, k_plus, k_minus)
    level = beta / len(pairs) if correction == "bonferroni" else beta
    order = np.argsort(-s, kind="stable")  # highest first
    in_sorted = truth[order]
    hits_top = np.concatenate([[0], np.cumsum(in_sorted)])  # "in" among the top k
    outs_bottom = np.concatenate([[0], np.cumsum(~in_sorted[::-1])])  # "out" among bottom k
    best = None
    for kp, km in pairs:
        correct = int(hits_top[kp] + outs_bottom[km])
        # Without delta the p-value grows with epsilon, and delta only adds to it: a
        # pair that cannot refute the best bound so far cannot refute anything above.
        if best is not None and one_run_p_value(m, kp + km, correct, best[0]) >= level:
            continue
        bound = one_run_epsilon(m, kp + km, correct, delta=delta, beta=level)
        if best is None or bound > best[0]:
            best = (bound, kp, km, correct)
    assert best is not None
    bound, kp, km, correct = best
    return OneRunAudit(
        epsilon_lower=bound,
        k_plus=kp,
        k_minus=km,
        guesses=kp + km,
        correct=correct,
        canaries=m,
        delta=delta,
        beta=beta,
        grid_size=len(pairs),
        correction=correction,
        epsilon_accounted=epsilon_accounted,
    )


def randomized_response_scores(included: np.ndarray, epsilon: float, seed: int = 0) -> np.ndarray:
    """Scores of epsilon-DP randomized response on the inclusion bits, for tests and
    calibration: each canary reports its bit truthfully with probability
    ``e^eps / (1 + e^eps)`` (the mechanism the one-run bound is tight for), plus a
    uniform tie-breaker in [0, 0.5) that carries no information.

    Examples
    --------
    >>> randomized_response_scores(np.array([True, False]), epsilon=50.0).round().tolist()
    [1.0, 0.0]
    """
    truth = np.asarray(included, dtype=bool)
    epsilon = real("epsilon", epsilon)
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    rng = np.random.default_rng(integer("seed", seed))
    honest = rng.random(truth.shape) < expit(epsilon)
    reported = np.where(honest, truth, ~truth)
    return reported.astype(np.float64) + 0.5 * rng.random(truth.shape)
