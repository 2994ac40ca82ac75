"""Progress of a run's phases: a live bar on a terminal, one line per step otherwise."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)


class PhaseProgress:
    """Shows how far each phase (training, unlearning, retraining) has come.

    Use as a context manager; call :meth:`start` when a phase begins and
    :meth:`advance` after each of its rounds.
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.console = Console(file=stream or sys.stdout)
        if not self.console.is_terminal:  # logs and pipes: wide enough for the tables
            self.console = Console(file=stream or sys.stdout, width=150)
        self._live = enabled and self.console.is_terminal
        self._progress: Progress | None = None
        self._tasks: dict[str, tuple[int, int]] = {}
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> PhaseProgress:
        if self._live:
            self._progress = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, phase: str, total: int) -> None:
        """A phase of ``total`` steps begins."""
        with self._lock:
            self._done[phase] = 0
            if self._progress is not None:
                task = self._progress.add_task(phase, total=total, status="")
                self._tasks[phase] = (task, total)
            else:
                self._tasks[phase] = (-1, total)
                self.note(f"{phase}: {total} rounds")

    def advance(self, phase: str, metrics: Mapping[str, float] | None = None) -> None:
        """One step of ``phase`` is done; ``metrics`` are shown next to it."""
        with self._lock:
            if phase not in self._tasks:
                return
            task, total = self._tasks[phase]
            self._done[phase] += 1
            status = "  ".join(f"{k} {v:.3f}" for k, v in (metrics or {}).items())
            if self._progress is not None:
                self._progress.update(task, advance=1, status=status)
            elif self.enabled:
                self.console.print(
                    f"  {phase} {self._done[phase]}/{total}  {status}", highlight=False
                )

    def note(self, text: str, style: str | None = None) -> None:
        """A line of text above the bars (plain text: brackets in it are shown as they
        are, never read as markup)."""
        if self.enabled:
            self.console.print(escape(text), style=style, highlight=False)
