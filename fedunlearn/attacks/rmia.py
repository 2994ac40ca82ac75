"""RMIA (Zarifzadeh, Liu and Shokri, "Low-cost high-power membership inference attacks",
ICML 2024): a record x is compared with population records z, pairwise.

For the target model theta, ``LR(x, z) = [Pr(x | theta) / Pr(x)] / [Pr(z | theta) / Pr(z)]``
where ``Pr(. | theta)`` is the probability the model gives the record's true class and
``Pr(.)`` its average over reference models. The score of x is the fraction of
population records z with ``LR(x, z) >= gamma`` (higher: member).

Which variant (:class:`RMIA`):

* **offline** (``offline_a`` given, the default 0.3): only OUT reference models are used,
  and ``Pr(x) = ((1 + a) * Pr_out(x) + (1 - a)) / 2``, the paper's linear approximation
  of the missing IN half. As in the authors' released code (privacy_meter's
  ``run_rmia``), the same approximation is applied to the population's ``Pr(z)``.
* **online** (``offline_a=None``): ``Pr(x)`` is the average over IN and OUT reference
  models, ``(mean_in(x) + mean_out(x)) / 2`` when ``in_mask`` says which is which (so an
  uneven split still weighs both halves equally, as the paper's half-in sampling does),
  else the plain mean; ``Pr(z)`` is the plain mean (population records are OUT of all
  references).

``gamma`` defaults to 1, as in the authors' released code; the comparison is ``>=``,
as in the paper's definition. Scores are computed in O((N + Z) log Z) by sorting, not
with an N x Z matrix.
"""

from __future__ import annotations

import numpy as np

from fedunlearn.attacks._checks import as_array, as_mask, probability, real, same_columns

_TINY = np.finfo(np.float64).tiny


def _probabilities(name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    array = as_array(name, value, ndim)
    if (array < 0).any() or (array > 1).any():
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    return array


class RMIA:
    """Relative membership inference (Zarifzadeh et al., ICML 2024), scikit-learn style.

    Parameters
    ----------
    offline_a : float in [0, 1] or None
        Offline approximation parameter ``a`` (``None``: the online attack).
    gamma : float > 0
        Threshold on the pairwise likelihood ratio.

    Examples
    --------
    >>> attack = RMIA(offline_a=0.0).fit(
    ...     reference_proba=np.array([[0.4, 0.6]]),
    ...     population_reference_proba=np.array([[0.2, 0.4, 0.8]]),
    ... )
    >>> # a = 0: Pr(.) = (Pr_out(.) + 1) / 2, so Pr(x) = 0.7, 0.8; Pr(z) = 0.6, 0.7, 0.9
    >>> # ratios: x 1.0, 0.6; z 0.5, 0.9, 1.1
    >>> attack.score(np.array([0.7, 0.48]), np.array([0.3, 0.63, 0.99])).round(4).tolist()
    [0.6667, 0.3333]
    """

    def __init__(self, offline_a: float | None = 0.3, gamma: float = 1.0) -> None:
        if offline_a is not None:
            offline_a = probability("offline_a", offline_a, low_open=False, high_open=False)
        self.offline_a = offline_a
        self.gamma = real("gamma", gamma)
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        self.log_px_: np.ndarray | None = None
        self.log_pz_: np.ndarray | None = None

    def _marginal(self, mean_out: np.ndarray) -> np.ndarray:
        a = self.offline_a
        return mean_out if a is None else ((1 + a) * mean_out + (1 - a)) / 2

    def fit(
        self,
        reference_proba: np.ndarray,
        population_reference_proba: np.ndarray,
        in_mask: np.ndarray | None = None,
    ) -> RMIA:
        """Estimate ``Pr(x)`` and ``Pr(z)`` from the reference models.

        Parameters
        ----------
        reference_proba : array of shape (K, N)
            Each reference model's probability of each candidate's true class.
        population_reference_proba : array of shape (K, Z)
            The same on Z population records (never trained on by any reference).
        in_mask : boolean array of shape (K, N), optional
            Which reference trained on which candidate. Offline, IN entries are
            ignored (each candidate needs an OUT reference); online, each candidate
            needs both. Omitted: every reference is OUT (offline) or the plain mean is
            used (online).
        """
        ref = _probabilities("reference_proba", reference_proba, 2)
        pop = _probabilities("population_reference_proba", population_reference_proba, 2)
        if pop.shape[0] != ref.shape[0]:
            raise ValueError(
                f"population_reference_proba has {pop.shape[0]} reference models, "
                f"reference_proba {ref.shape[0]}"
            )
        if in_mask is None:
            mask = np.zeros(ref.shape, dtype=bool)
        else:
            mask = as_mask("in_mask", in_mask, ref.shape)
        n_out = (~mask).sum(axis=0)
        n_in = mask.sum(axis=0)
        if (n_out == 0).any():
            raise ValueError("in_mask: every candidate needs at least one OUT reference")
        mean_out = np.where(mask, 0.0, ref).sum(axis=0) / n_out
        if self.offline_a is None and in_mask is not None:
            if (n_in == 0).any():
                raise ValueError("in_mask: online RMIA needs an IN reference per candidate")
            px = (np.where(mask, ref, 0.0).sum(axis=0) / np.maximum(n_in, 1) + mean_out) / 2
        else:
            px = self._marginal(mean_out)
        self.log_px_ = np.log(np.maximum(px, _TINY))
        self.log_pz_ = np.log(np.maximum(self._marginal(pop.mean(axis=0)), _TINY))
        return self

    def ratios(
        self, target_proba: np.ndarray, population_target_proba: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``log(Pr(x | theta) / Pr(x))`` per candidate and the same per population record."""
        if self.log_px_ is None or self.log_pz_ is None:
            raise RuntimeError("call RMIA.fit() before score()")
        target = _probabilities("target_proba", target_proba, 1)
        same_columns("target_proba", target, "the fitted reference_proba", self.log_px_.size)
        pop = _probabilities("population_target_proba", population_target_proba, 1)
        same_columns("population_target_proba", pop, "the fitted population", self.log_pz_.size)
        log_x = np.log(np.maximum(target, _TINY)) - self.log_px_
        log_z = np.log(np.maximum(pop, _TINY)) - self.log_pz_
        return log_x, log_z

    def score(self, target_proba: np.ndarray, population_target_proba: np.ndarray) -> np.ndarray:
        """Fraction of population records z with ``LR(x, z) >= gamma``, per candidate x.

        Parameters
        ----------
        target_proba : array of shape (N,)
            The target model's probability of each candidate's true class.
        population_target_proba : array of shape (Z,)
            The same on the population records.
        """
        log_x, log_z = self.ratios(target_proba, population_target_proba)
        # LR(x, z) >= gamma  <=>  log ratio(z) <= log ratio(x) - log gamma
        ordered = np.sort(log_z)
        below = np.searchsorted(ordered, log_x - np.log(self.gamma), side="right")
        return below / ordered.size
