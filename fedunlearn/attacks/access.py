"""What an attacker may ask of a released model: full outputs, or labels only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from torch import nn

from fedunlearn.learning.arrays import Arrays, load_arrays
from fedunlearn.learning.metrics import log_softmax
from fedunlearn.learning.training import predict_logits


class AccessDeniedError(PermissionError):
    """The release does not give this kind of output."""


class ModelAccess(Protocol):
    """Query access to one released model."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (may be refused by label-only releases)."""
        ...

    def predict_label(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes."""
        ...


class FullAccess:
    """Full probability outputs of a model given by its weights (black box)."""

    def __init__(self, new_model: Callable[[], nn.Module], arrays: Arrays) -> None:
        self._model = new_model()
        load_arrays(self._model, arrays)
        self._model.eval()

    def logits(self, x: np.ndarray) -> np.ndarray:
        return predict_logits(self._model, np.asarray(x, dtype=np.float32))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.exp(log_softmax(self.logits(x)))

    def predict_label(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)


class LabelAccess:
    """Only the predicted label of a model (a label-only release)."""

    def __init__(self, inner: ModelAccess) -> None:
        self._inner = inner

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise AccessDeniedError("this release gives labels only; use a label-only attack")

    def predict_label(self, x: np.ndarray) -> np.ndarray:
        return self._inner.predict_label(x)


def true_class_probability(access: ModelAccess, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``p(y | x)`` for each candidate."""
    probs = access.predict_proba(x)
    return probs[np.arange(len(y)), np.asarray(y, dtype=np.int64)]


def noisy_copies(x: np.ndarray, copies: int, sigma: float, seed: int) -> np.ndarray:
    """``copies`` Gaussian-perturbed versions of each input, shape (copies, N, ...)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, sigma, size=(copies, *np.shape(x))).astype(np.float32)
    return np.asarray(x, dtype=np.float32)[None] + noise


def robustness(
    access: ModelAccess, x: np.ndarray, y: np.ndarray, copies: int, sigma: float, seed: int
) -> np.ndarray:
    """Share of noisy copies still labelled ``y`` (label-only membership signal)."""
    batch = noisy_copies(x, copies, sigma, seed)
    hits = np.stack([access.predict_label(b) == y for b in batch])
    return hits.mean(axis=0)


class ReleasedAccess:
    """A model as a release policy exposes it (defence stage S3).

    Parameters
    ----------
    inner : FullAccess
        The model.
    mode : {"full", "top_k", "label", "rounded", "temperature"}
        ``top_k`` keeps the ``k`` largest probabilities (the rest 0), ``label`` gives
        labels only, ``rounded`` rounds probabilities to ``decimals``, ``temperature``
        is the softmax of the logits divided by ``temperature``.
    """

    def __init__(
        self,
        inner: FullAccess,
        mode: str = "full",
        k: int = 3,
        decimals: int = 1,
        temperature: float = 1.0,
    ) -> None:
        if mode not in ("full", "top_k", "label", "rounded", "temperature"):
            raise ValueError(f"unknown release mode {mode!r}")
        self.inner = inner
        self.mode = mode
        self.k = k
        self.decimals = decimals
        self.temperature = temperature

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.mode == "label":
            raise AccessDeniedError("this release gives labels only; use a label-only attack")
        logits = self.inner.logits(x)
        if self.mode == "temperature":
            return np.exp(log_softmax(logits / self.temperature))
        probs = np.exp(log_softmax(logits))
        if self.mode == "top_k":
            cut = -np.sort(-probs, axis=1)[
                :, min(self.k, probs.shape[1]) - 1 : min(self.k, probs.shape[1])
            ]
            return np.where(probs >= cut, probs, 0.0)
        if self.mode == "rounded":
            return np.round(probs, self.decimals)
        return probs

    def predict_label(self, x: np.ndarray) -> np.ndarray:
        return self.inner.predict_label(x)
