"""Compare unlearning methods on one scenario over several seeds.

    fedunlearn compare experiments/compare_methods.toml --seeds 0 1 2

Runs the scenario once per seed (each a full run folder), then writes, next to them,
``summary.md`` and ``summary.csv`` (every model's audit, gaps to the reference and
relative cost as mean ± std over seeds), ``runs.csv`` (one row per model and seed) and
``summary.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.reporting.tables import comparison_rows, write_csv
from fedunlearn.studies.summary import plot_summary, summarise, summary_markdown


@dataclass
class Comparison:
    """Where a comparison was written and what it found."""

    out_dir: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    markdown: str


def compare(
    config: ExperimentConfig,
    seeds: list[int],
    *,
    out_dir: Path | None = None,
    show_progress: bool = True,
) -> Comparison:
    """Run ``config`` for every seed and summarise the comparison rows."""
    if not seeds:
        raise ValueError("give at least one seed")
    if out_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path(config.output.dir) / f"{config.name}-compare-{stamp}"
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console()
    rows: list[dict[str, Any]] = []
    reference = config.unlearning.reference
    for seed in seeds:
        console.print(f"[bold]seed {seed}[/] ({seeds.index(seed) + 1} of {len(seeds)})")
        run = config.with_overrides([f"seed={seed}", f"output.run_dir={out_dir / f'seed{seed}'}"])
        metrics = simulate(run, show_progress=show_progress).metrics
        reference = metrics.reference
        rows += [{"seed": seed, **row} for row in comparison_rows(metrics)]
    summary = summarise(rows, by=("model",))
    markdown = summary_markdown(summary)
    write_csv(rows, out_dir / "runs.csv")
    write_csv(summary, out_dir / "summary.csv")
    title = f"{config.name}: seeds {', '.join(map(str, seeds))}"
    (out_dir / "summary.md").write_text(f"# {title}\n\n{markdown}")
    if config.output.figures:
        plot_summary(summary, reference, out_dir / "summary.png", title=title)
    print(markdown)
    console.print(f"Comparison: {out_dir}")
    return Comparison(out_dir, rows, summary, markdown)
