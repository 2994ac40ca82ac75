"""What a finished run prints: the comparison table, savings, errors, refused requests."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.reporting.tables import attack_rows, attack_table, summary_table


def print_summary(
    metrics: RunMetrics, run_dir: Path | None = None, console: Console | None = None
) -> None:
    """Print the comparison table, errors and refused requests."""
    console = console or Console()
    if not metrics.models:
        console.print("No model was unlearned (no accepted request).")
    else:
        console.print(summary_table(metrics))
        relative = metrics.cost.relative_to_reference
        for method in metrics.methods:
            saving = relative.get(method, {}).get("client_epochs")
            if saving and saving < 1:  # only savings are worth a line
                console.print(
                    f"{method}: {1 / saving:.1f}x fewer client epochs than {metrics.reference}"
                )
    attacks = metrics.attacks.metrics if metrics.attacks is not None else {}
    if attack_rows(attacks):
        console.print(attack_table(attacks, "leakage audit (TPR left empty below 1 / negatives)"))
    for label, reason in metrics.errors.items():
        console.print(f"[yellow]{escape(label)}:[/] {escape(reason)}")
    for r in metrics.requests:
        if not r["accepted"]:
            console.print(
                f"[yellow]refused request[/] from client {r['requester']}: {escape(r['reason'])}"
            )
    if run_dir is not None:
        console.print(f"Results: {run_dir}")
