"""A study's ROC figures: log-log, each model averaged over seeds on a log-spaced grid
from the lowest FPR every seed resolves."""

from __future__ import annotations

import numpy as np
import pytest

from fedunlearn.studies.roc import roc_figure, tpr_on_grid


def test_tpr_on_grid_takes_the_best_tpr_at_a_reached_fpr_and_the_segment_between() -> None:
    # Tied scores: three points at FPR 0.1 (TPR 0.2, 0.4, 0.6).
    fpr = [0.0, 0.1, 0.1, 0.1, 0.5, 1.0]
    tpr = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    grid = np.array([0.05, 0.1, 0.3, 0.5, 1.0])
    # 0.05: halfway from (0, 0) to (0.1, 0.2); 0.1: the best there, 0.6; 0.3: halfway
    # from (0.1, 0.6) to (0.5, 0.8); the points themselves at 0.5 and 1.
    np.testing.assert_allclose(tpr_on_grid(fpr, tpr, grid), [0.1, 0.6, 0.7, 0.8, 1.0])


def test_tpr_on_grid_refuses_curves_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="same-length"):
        tpr_on_grid([0.0, 1.0], [0.0, 0.5, 1.0], np.array([0.5]))


def test_roc_figure_is_log_log_from_the_lowest_fpr_every_seed_resolves() -> None:
    import matplotlib.pyplot as plt

    # Seed 0: 1,000 negatives (lowest FPR 0.1%); seed 1: 100 (1%). TPR = sqrt(FPR).
    curves = []
    for lowest in (0.001, 0.01):
        fpr = np.linspace(0, 1, round(1 / lowest) + 1)
        curves.append((list(fpr), list(np.sqrt(fpr)), lowest))
    fig = roc_figure("all runs", {"lira_offline": {"federaser": curves}})
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    mean, chance = ax.get_lines()[0], ax.get_lines()[1]
    assert mean.get_label() == "federaser (2 seeds)" and chance.get_label() == "chance"
    x, y = mean.get_xdata(), mean.get_ydata()
    # Below 1% seed 1 has no operating point: the averaged curve starts there.
    assert x.min() == pytest.approx(0.01) and x.max() == pytest.approx(1.0)
    assert np.allclose(np.diff(np.log(x)), np.log(x[1] / x[0]))  # log-spaced
    # Both seeds pass through (1%, 0.1); elsewhere each seed's straight segments
    # between its points (numpy's interp on its strictly increasing FPRs), averaged.
    assert y[0] == pytest.approx(0.1)
    by_hand = np.mean([np.interp(x, f, t) for f, t, _ in curves], axis=0)
    np.testing.assert_allclose(y, by_hand)
    assert "lowest resolved 1%" in ax.get_xlabel()
    plt.close(fig)
