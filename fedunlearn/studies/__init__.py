"""Studies over many runs: sweeps (grids over keys and seeds, resumable), comparisons
over seeds, mean-and-spread summaries and the Markdown report of a study.

May import: :mod:`fedunlearn.run`, :mod:`fedunlearn.reporting`, :mod:`fedunlearn.config`;
:mod:`fedunlearn.apps` to start simulations.
"""
