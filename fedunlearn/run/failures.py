"""What happens when something goes wrong in a run: one policy for every phase.

* **Fatal**: the federation is broken (:class:`~fedunlearn.federation.registry.
  FederationError`), preparing or training failed, or the reference failed. The run
  stops; its folder says ``failed`` with the error, and keeps the rounds done so far.
* **Isolated method**: a method that fails (raises, or leaves non-finite weights or a
  collapsed model) is recorded in ``errors`` (its full text in ``errors/<label>.txt``)
  and makes the run ``partial``; the other methods go on, and a sweep, which only skips
  ``complete`` runs, redoes it. A method that cannot serve the requests at all (whole
  clients only, asked for records) is recorded as skipped: the run stays complete.
* **Isolated step**: a part of the audit that fails (the leakage audit) is recorded the
  same way and makes the run ``partial``.
"""

from __future__ import annotations

from pathlib import Path

from fedunlearn.federation.registry import FederationError
from fedunlearn.reporting.folder import write_error


def is_fatal(err: BaseException) -> bool:
    """Whether ``err`` must stop the run rather than one method or step."""
    return isinstance(err, FederationError) or not isinstance(err, Exception)


class Failures:
    """The failures of one experiment's run, and the status they leave it in."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.errors: dict[str, str] = {}
        self.partial = False

    def skip(self, label: str, reason: str) -> None:
        """A method left out before it ran (it cannot serve this run's requests)."""
        self.errors[label] = reason

    def method_failed(self, label: str, text: str) -> None:
        """A method failed: record it (full text kept), the run is partial; the others
        go on."""
        self.errors[label] = text
        self.partial = True
        write_error(self.run_dir, label, text)

    def step_failed(self, name: str, file_name: str, summary: str, text: str) -> None:
        """A step of the audit failed: record it and mark the run partial."""
        self.errors[name] = summary
        self.partial = True
        write_error(self.run_dir, file_name, text)

    def __contains__(self, label: object) -> bool:
        return label in self.errors

    @property
    def status(self) -> str:
        """``partial`` when a step failed, else ``complete``."""
        return "partial" if self.partial else "complete"

    def summary(self) -> dict[str, str]:
        """Each failure's first line (for ``metrics.json``)."""
        return {k: v.split("\n")[0] for k, v in self.errors.items()}
