"""Hessian-vector products from an L-BFGS buffer (compact representation).

FedRecover (Cao et al., S&P 2023) estimates how a client's update changes when the
model it starts from changes: ``g(w') ~ g(w) + B (w' - w)``, with ``B`` the L-BFGS
approximation built from a few pairs ``s_i = w'_i - w_i`` (model differences) and
``y_i = g(w'_i) - g(w_i)`` (update differences) seen in rounds where the client
computed its update exactly.

The product uses the compact form of Byrd, Nocedal and Schnabel (1994), as in the
authors' code::

    B v = sigma v - [sigma S, Y] M^-1 [sigma S^T v; Y^T v],
    M = [[sigma S^T S, L], [L^T, -D]],

with ``L`` the strictly lower triangle of ``S^T Y``, ``D`` its diagonal and
``sigma = y_m^T s_m / s_m^T s_m`` from the newest pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def lbfgs_product(s: Sequence[np.ndarray], y: Sequence[np.ndarray], v: np.ndarray) -> np.ndarray:
    """``B v`` for the L-BFGS matrix ``B`` of the pairs ``(s_i, y_i)`` (oldest first).

    Raises ValueError for an empty buffer or mismatched shapes. Pairs should satisfy
    the curvature condition ``s_i^T y_i > 0``; callers drop those that do not.
    """
    if not s or len(s) != len(y):
        raise ValueError("need one or more (s, y) pairs of equal count")
    s_mat = np.stack([np.asarray(a, dtype=np.float64).ravel() for a in s], axis=1)
    y_mat = np.stack([np.asarray(a, dtype=np.float64).ravel() for a in y], axis=1)
    v = np.asarray(v, dtype=np.float64).ravel()
    if s_mat.shape != y_mat.shape or s_mat.shape[0] != v.shape[0]:
        raise ValueError(f"shapes differ: S {s_mat.shape}, Y {y_mat.shape}, v {v.shape}")
    sy = s_mat.T @ y_mat
    ss = s_mat.T @ s_mat
    lower = np.tril(sy, k=-1)
    diag = np.diag(np.diag(sy))
    sigma = float(y_mat[:, -1] @ s_mat[:, -1]) / float(s_mat[:, -1] @ s_mat[:, -1])
    middle = np.block([[sigma * ss, lower], [lower.T, -diag]])
    rhs = np.concatenate([sigma * (s_mat.T @ v), y_mat.T @ v])
    return sigma * v - np.hstack([sigma * s_mat, y_mat]) @ np.linalg.solve(middle, rhs)


def curvature_ok(s: np.ndarray, y: np.ndarray, tolerance: float = 1e-10) -> bool:
    """Whether a pair satisfies ``s^T y > tolerance * |s| |y|`` (keeps ``B`` positive)."""
    sy = float(np.dot(s.ravel(), y.ravel()))
    return sy > tolerance * float(np.linalg.norm(s)) * float(np.linalg.norm(y))
