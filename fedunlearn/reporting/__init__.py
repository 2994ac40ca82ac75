"""Reporting a run: the typed results, the results folder, tables, figures, the console.

Owns: :class:`~.schema.RunMetrics`, the one schema of ``metrics.json`` that the
report, sweeps and summaries read (:mod:`.schema`); writing the results folder
(:mod:`.folder`) and its saved models, ``models.npz`` (:mod:`.models`); the
comparison table (:mod:`.tables`); figures (:mod:`.figures`); the summary printed at
the end (:mod:`.console`); progress bars (:mod:`.progress`).

May import: nothing else of fedunlearn. It never imports the run that fills it.
"""
