"""Unlearning methods defined outside the package, selected by dotted path in tests."""

from __future__ import annotations

from fedunlearn.learning.arrays import add, scale, subtract
from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome


class HalfwayBack(UnlearningMethod):
    """Moves the trained model part of the way back to the initial model.

    Parameters
    ----------
    fraction : float
        How far back to go, in [0, 1]: 0 keeps the trained model, 1 returns to the
        initial one.
    """

    name = "halfway-back"

    def __init__(self, fraction: float = 0.5) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
        self.fraction = fraction

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        back = scale(subtract(job.initial, job.original), self.fraction)
        return UnlearningOutcome(arrays=add(job.original, back))


class Broken(UnlearningMethod):
    """Always fails: the run must go on without it."""

    name = "broken"

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        raise RuntimeError("this method is broken on purpose")


class WreckFirst(UnlearningMethod):
    """Returns the initial model at its first stage (a monitor must reject that), then
    keeps the model; its details say what it was asked to forget at each stage."""

    name = "wreck-first"
    supports_records = True

    def __init__(self) -> None:
        self.calls = 0

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        self.calls += 1
        arrays = job.initial if self.calls == 1 else job.original
        return UnlearningOutcome(arrays=arrays, details={"forget": job.forget.as_dict()})


class Zeros(UnlearningMethod):
    """Returns a model of zeros: it has learned nothing (collapsed)."""

    name = "zeros"

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        return UnlearningOutcome(arrays={k: 0 * v for k, v in job.original.items()})


class Renamed(UnlearningMethod):
    """Keeps its option under another attribute name than the argument's."""

    name = "renamed"

    def __init__(self, alpha: float = 1.0) -> None:
        self.a = alpha

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        return UnlearningOutcome(arrays=job.original)
