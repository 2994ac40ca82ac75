"""Calibrated membership tests: each record is judged against reference models
(*shadow federations*) trained with and without it, not against one global threshold.

* :func:`logit_confidence`: the statistic all of them read, ``phi(p) = log(p / (1 - p))``
  of the true class's probability, computed stably from logits;
* :class:`LiRA` (Carlini et al., "Membership inference attacks from first principles",
  IEEE S&P 2022): per record, Gaussians fitted to ``phi`` under reference models that
  trained on it (IN) and that did not (OUT); online = their log-likelihood ratio,
  offline = a one-sided test against OUT only;
* :class:`ULiRA` (Hayes et al., "Inexact unlearning needs more careful evaluations to
  avoid a false sense of privacy", 2024): the same ratio for the unlearning question,
  "unlearned by the method" (IN) against "retrained without the record" (OUT);
* :func:`client_scores`: did client c take part? Its records' scores pooled.

RMIA is in :mod:`fedunlearn.attacks.rmia`. All are pure NumPy/SciPy: the harness
computes the scores of the target and reference models and keeps the truth.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import special, stats
from scipy.special import logsumexp

from fedunlearn.attacks._checks import as_array, as_mask, choice, real, same_columns

Center = Literal["mean", "median"]


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence of the true class, ``phi = log(p_y / (1 - p_y))``.

    Computed as ``z_y - logsumexp(z_{-y})`` from the logits ``z`` (equal to
    ``log p_y - log(1 - p_y)`` for ``p = softmax(z)``), which stays exact where
    ``1 - p_y`` underflows.

    Parameters
    ----------
    logits : array of shape (N, C), C >= 2
        Unnormalised outputs (any shift per row gives the same result).
    labels : integer array of shape (N,)
        True class of each record, in ``[0, C)``.

    Returns
    -------
    ndarray of shape (N,)
        Higher means more confident in the true class (members score higher).

    Examples
    --------
    >>> phi = logit_confidence(np.array([[2.0, 0.0], [0.0, 50.0]]), np.array([0, 0]))
    >>> np.round(phi, 6).tolist()
    [2.0, -50.0]
    """
    z = as_array("logits", logits, 2)
    y = np.asarray(labels)
    if y.shape != (z.shape[0],):
        raise ValueError(f"labels must have shape ({z.shape[0]},), got {y.shape}")
    if z.shape[1] < 2:
        raise ValueError(f"logits need at least 2 classes, got {z.shape[1]}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be integers in [0, {z.shape[1]})")
    rows = np.arange(z.shape[0])
    others = z.copy()
    others[rows, y] = -np.inf
    return z[rows, y] - logsumexp(others, axis=1)


def logit_confidence_from_proba(
    proba: np.ndarray, labels: np.ndarray, clip: float = 1e-12
) -> np.ndarray:
    """``phi`` from probabilities when the logits are not released.

    ``p_y`` is clipped to ``[clip, 1 - clip]`` (a released probability of 1.0 carries no
    more information), so prefer :func:`logit_confidence` when logits are available.

    Examples
    --------
    >>> logit_confidence_from_proba(np.array([[0.75, 0.25]]), np.array([0])).round(6)
    array([1.098612])
    """
    p = as_array("proba", proba, 2)
    if (p < 0).any() or (p > 1).any():
        raise ValueError("proba must lie in [0, 1]")
    clip = real("clip", clip)
    if not 0 < clip < 0.5:
        raise ValueError(f"clip must be in (0, 0.5), got {clip}")
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({p.shape[0]},)")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be in [0, {p.shape[1]})")
    py = np.clip(p[np.arange(p.shape[0]), y], clip, 1 - clip)
    return np.log(py) - np.log1p(-py)


def fit_gaussians(
    scores: np.ndarray,
    mask: np.ndarray,
    *,
    center: Center = "mean",
    global_variance: bool = False,
    min_std: float = 1e-6,
    name: str = "reference_scores",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-record Gaussian fit of the ``scores[k, n]`` where ``mask[k, n]`` (NaN: missing).

    The location is the mean (or median) of each record's selected scores. The scale is
    the per-record maximum-likelihood standard deviation (``ddof=0``, as Carlini et al.'s
    code), or with ``global_variance`` one pooled within-record standard deviation shared
    by all records: ``sqrt(sum_n sum_k (s_kn - mean_n)^2 / sum_n (count_n - 1))``, so a
    record seen once adds nothing (the paper's remedy when references are few; its code
    pools around the grand mean instead, which also counts the spread between records).
    Scales are floored at ``min_std``.

    Returns
    -------
    (location, scale), each of shape (N,)
    """
    scores = as_array(name, scores, 2, allow_nan=True)
    mask = as_mask("mask", mask, scores.shape)
    center = choice("center", center, ("mean", "median"))
    min_std = real("min_std", min_std)
    if min_std <= 0:
        raise ValueError(f"min_std must be > 0, got {min_std}")
    selected = mask & ~np.isnan(scores)
    counts = selected.sum(axis=0)
    need = 1 if global_variance else 2
    if (counts < need).any():
        first = int(np.flatnonzero(counts < need)[0])
        hint = "" if global_variance else " (or use global_variance=True)"
        raise ValueError(
            f"{name}: record {first} has {int(counts[first])} score(s) under this "
            f"hypothesis; at least {need} are needed{hint}"
        )
    values = np.where(selected, scores, np.nan)
    means = np.nanmean(values, axis=0)
    squares = np.where(selected, (scores - means) ** 2, 0.0).sum(axis=0)
    if global_variance:
        dof = int((counts - 1).sum())
        if dof == 0:
            raise ValueError(f"{name}: a global variance needs some record scored twice")
        scale = np.full(scores.shape[1], np.sqrt(squares.sum() / dof))
    else:
        scale = np.sqrt(squares / counts)
    location = np.nanmedian(values, axis=0) if center == "median" else means
    return location, np.maximum(scale, min_std)


class _GaussianTest:
    """Shared parameters and checks of LiRA and U-LiRA."""

    def __init__(
        self, *, center: Center = "mean", global_variance: bool = False, min_std: float = 1e-6
    ) -> None:
        self.center = choice("center", center, ("mean", "median"))
        if not isinstance(global_variance, bool):
            raise TypeError("global_variance must be a bool")
        self.global_variance = global_variance
        self.min_std = real("min_std", min_std)
        if self.min_std <= 0:
            raise ValueError(f"min_std must be > 0, got {self.min_std}")
        self.in_: tuple[np.ndarray, np.ndarray] | None = None
        self.out_: tuple[np.ndarray, np.ndarray] | None = None

    def _fit(self, scores: np.ndarray, mask: np.ndarray, name: str, need_in: bool) -> None:
        options = {
            "center": self.center,
            "global_variance": self.global_variance,
            "min_std": self.min_std,
        }
        self.out_ = fit_gaussians(scores, ~mask, name=f"{name} (OUT)", **options)
        self.in_ = fit_gaussians(scores, mask, name=f"{name} (IN)", **options) if need_in else None

    def _target(self, target_scores: np.ndarray) -> np.ndarray:
        if self.out_ is None:
            raise RuntimeError(f"call {type(self).__name__}.fit() before score()")
        target = as_array("target_scores", target_scores, 1)
        same_columns("target_scores", target, "the fitted references", self.out_[0].size)
        return target

    def _log_ratio(self, target: np.ndarray) -> np.ndarray:
        assert self.in_ is not None and self.out_ is not None
        return stats.norm.logpdf(target, *self.in_) - stats.norm.logpdf(target, *self.out_)


class LiRA(_GaussianTest):
    """Likelihood-ratio membership test (Carlini et al., S&P 2022), scikit-learn style.

    ``fit`` reads the reference models' scores ``phi`` (see :func:`logit_confidence`) on
    the N candidate records, shape (K, N), and which references trained on which record,
    ``in_mask`` (K, N); ``score`` rates the target model's ``phi`` on the same records.

    * ``online=True``: ``log N(phi; mu_in, s_in) - log N(phi; mu_out, s_out)``, the
      per-record log-likelihood ratio (each record needs IN and OUT references);
    * ``online=False`` (offline): ``-log P[Z >= phi]`` for ``Z ~ N(mu_out, s_out)``, the
      one-sided p-value against the OUT fit only, as a score (no IN references needed).

    Higher scores mean "member". Reference scores may be NaN where a reference did not
    score a record. With few references pass ``global_variance=True`` (see
    :func:`fit_gaussians`); ``center="median"`` is the paper code's robust location.

    Examples
    --------
    >>> refs = np.array([[3.0, 0.0], [5.0, 2.0], [0.0, 4.0], [2.0, 6.0]])
    >>> inside = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)
    >>> attack = LiRA().fit(refs, inside)     # record 0: IN N(4, 1), OUT N(1, 1)
    >>> # record 1: IN N(5, 1), OUT N(1, 1)
    >>> attack.score(np.array([4.0, 1.0])).round(3).tolist()
    [4.5, -8.0]
    """

    def __init__(
        self,
        online: bool = True,
        *,
        center: Center = "mean",
        global_variance: bool = False,
        min_std: float = 1e-6,
    ) -> None:
        super().__init__(center=center, global_variance=global_variance, min_std=min_std)
        if not isinstance(online, bool):
            raise TypeError("online must be a bool")
        self.online = online

    def fit(self, reference_scores: np.ndarray, in_mask: np.ndarray | None = None) -> LiRA:
        """Fit the per-record IN (online only) and OUT Gaussians.

        ``in_mask`` may be omitted offline (every reference is then OUT).
        """
        scores = as_array("reference_scores", reference_scores, 2, allow_nan=True)
        if in_mask is None:
            if self.online:
                raise ValueError("in_mask is required for online LiRA")
            mask = np.zeros(scores.shape, dtype=bool)
        else:
            mask = as_mask("in_mask", in_mask, scores.shape)
        self._fit(scores, mask, "reference_scores", need_in=self.online)
        return self

    def score(self, target_scores: np.ndarray) -> np.ndarray:
        """Membership score of each record under the target model (higher: member)."""
        target = self._target(target_scores)
        if self.online:
            return self._log_ratio(target)
        assert self.out_ is not None
        return -stats.norm.logsf(target, *self.out_)


class ULiRA(_GaussianTest):
    """U-LiRA (Hayes et al., 2024): was this record *unlearned* or *never trained on*?

    Interface: two arrays of shadow scores on the N forgotten records,
    ``unlearned_scores`` (K_u, N) from shadow federations that trained on the records
    and then ran the unlearning method, and ``retrained_scores`` (K_r, N) from shadow
    federations retrained without them; NaN where a shadow does not speak about a record
    (in the paper each shadow forgets a random subset). ``score`` returns, per record,
    ``log N(phi; mu_unl, s_unl) - log N(phi; mu_ret, s_ret)`` for the target model's
    ``phi``: positive means the target looks like the method's output rather than
    retraining's (the method left a trace). An exact method scores near 0 on average.

    Examples
    --------
    >>> unl = np.array([[1.0], [3.0]])   # N(2, 1)
    >>> ret = np.array([[-1.0], [1.0]])  # N(0, 1)
    >>> ULiRA().fit(unl, ret).score(np.array([1.0])).round(6).tolist()
    [0.0]
    """

    def fit(self, unlearned_scores: np.ndarray, retrained_scores: np.ndarray) -> ULiRA:
        """Fit the per-record Gaussians of both hypotheses."""
        unlearned = as_array("unlearned_scores", unlearned_scores, 2, allow_nan=True)
        retrained = as_array("retrained_scores", retrained_scores, 2, allow_nan=True)
        same_columns("retrained_scores", retrained, "unlearned_scores", unlearned.shape[1])
        scores = np.concatenate([unlearned, retrained])
        mask = np.zeros(scores.shape, dtype=bool)
        mask[: len(unlearned)] = True
        self._fit(scores, mask, "shadow scores", need_in=True)
        return self

    def score(self, target_scores: np.ndarray) -> np.ndarray:
        """Per-record log-likelihood ratio "unlearned" vs "retrained" (higher: unlearned)."""
        return self._log_ratio(self._target(target_scores))


def client_scores(
    record_scores: np.ndarray,
    clients: np.ndarray,
    reduce: Literal["mean", "sum", "fisher"] = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-client membership test: did client c take part? Pools its records' scores.

    * ``"sum"``: for online :class:`LiRA` log-likelihood ratios, the sum over a client's
      records is the log-likelihood ratio of all of them together if records are
      independent (the Neyman-Pearson test of "client in" vs "client out");
    * ``"mean"``: the same divided by the client's record count, which ranks clients
      holding different numbers of candidate records on one scale;
    * ``"fisher"``: for offline LiRA scores ``-log p``, Fisher's combination: under "out"
      ``2 sum(-log p)`` is chi-squared with ``2 n`` degrees of freedom; returns
      ``-log`` of the combined p-value.

    Records of one client go in or out of a reference federation together, and share a
    client's data distribution, so independence is an approximation: ``"sum"`` and
    ``"fisher"`` overstate the evidence when records are correlated (``"mean"`` only
    ranks). The other route is client-level LiRA: fit :class:`LiRA` on a per-client
    statistic (e.g. the mean ``phi`` of its records), shape (K, C), with a (K, C) mask
    of which reference federations the client took part in.

    Parameters
    ----------
    record_scores : array of shape (N,)
        One score per candidate record (higher: member).
    clients : array of shape (N,)
        The client holding each record (any sortable ids).

    Returns
    -------
    (client_ids, scores)
        Sorted distinct clients and one score each (higher: took part).

    Examples
    --------
    >>> ids, s = client_scores(np.array([1.0, 3.0, -2.0]), np.array([7, 7, 9]))
    >>> ids.tolist(), s.tolist()
    ([7, 9], [2.0, -2.0])
    """
    scores = as_array("record_scores", record_scores, 1)
    owners = np.asarray(clients)
    if owners.shape != scores.shape:
        raise ValueError(f"clients must have shape {scores.shape}, got {owners.shape}")
    reduce = choice("reduce", reduce, ("mean", "sum", "fisher"))
    if reduce == "fisher" and (scores < 0).any():
        raise ValueError("record_scores must be -log p-values (>= 0) for reduce='fisher'")
    ids, index = np.unique(owners, return_inverse=True)
    sums = np.bincount(index, weights=scores, minlength=len(ids))
    counts = np.bincount(index, minlength=len(ids))
    if reduce == "sum":
        return ids, sums
    if reduce == "mean":
        return ids, sums / counts
    return ids, -chi2_logsf(2.0 * sums, 2 * counts)


def chi2_logsf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``log P[X >= x]`` for ``X ~ chi2(df)``, finite where SciPy's underflows.

    ``scipy.stats.chi2.logsf`` returns ``-inf`` once the tail drops below the smallest
    double (about ``exp(-745)``), which strong evidence reaches (Fisher's statistic of
    a client whose records all fit far better than under OUT). There the asymptotic
    series of the upper incomplete gamma function takes over: with ``a = df / 2`` and
    ``y = x / 2``, ``log Q(a, y) = (a - 1) log y - y - lgamma(a) + log sum_k t_k``,
    ``t_0 = 1``, ``t_k = t_{k-1} (a - k) / y``, summed while the terms shrink (``y``
    is then far above ``a``, where the series is accurate).

    Parameters
    ----------
    x : array
        Statistics (>= 0).
    df : array
        Degrees of freedom (> 0), broadcast against ``x``.

    Examples
    --------
    >>> bool(np.isfinite(chi2_logsf(np.array([5000.0]), np.array([20]))[0]))
    True
    """
    x, df = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(df, np.float64))
    out = np.asarray(stats.chi2.logsf(x, df), dtype=np.float64).copy()
    for i in zip(*np.nonzero(~np.isfinite(out)), strict=True):
        a, y = df[i] / 2.0, x[i] / 2.0
        term, total = 1.0, 1.0
        for k in range(1, 200):
            step = term * (a - k) / y
            if abs(step) >= abs(term):
                break
            term = step
            total += term
        out[i] = (a - 1.0) * np.log(y) - y - special.gammaln(a) + np.log(total)
    return out
