"""Argument checks shared by the calibrated attacks, the DP audit and the forgetting
scores: every error names the argument at fault."""

from __future__ import annotations

import numbers

import numpy as np


def as_array(name: str, value: object, ndim: int, *, allow_nan: bool = False) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions, finite (or NaN if allowed)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers ({error})") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        allowed = "finite or NaN (missing)" if allow_nan else "finite"
        raise ValueError(f"{name} must be {allowed}; {int(bad.sum())} entries are not")
    return array


def as_mask(name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a boolean array of ``shape`` (0/1 integers are accepted)."""
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        array = array.astype(bool)
    return array


def same_columns(name: str, array: np.ndarray, other: str, n: int) -> None:
    """Check that the last axis of ``array`` (named ``name``) has the ``n`` records of
    ``other``."""
    if array.shape[-1] != n:
        raise ValueError(f"{name} covers {array.shape[-1]} records, {other} covers {n}")


def probability(
    name: str, value: object, *, low_open: bool = True, high_open: bool = True
) -> float:
    """A number in (0, 1), with closed ends where asked."""
    number = real(name, value)
    above = number > 0 if low_open else number >= 0
    below = number < 1 if high_open else number <= 1
    if not (above and below):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}0, 1{hi}, got {number}")
    return number


def real(name: str, value: object) -> float:
    """A finite real number (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def integer(name: str, value: object, minimum: int = 0) -> int:
    """An integer at least ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def choice(name: str, value: object, options: tuple[str, ...]) -> str:
    """One of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return str(value)
