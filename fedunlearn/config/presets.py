"""Named sets of overrides for quick runs.

``SMALL_DIGITS``: scikit-learn's digits (bundled, no download), 4 clients, a 32-unit
MLP, 4 rounds of one local epoch. A whole run with FedEraser and retraining takes about
a second on one core: the size of the test suite's experiments and of the benchmarks'
"small" scenario. Apply with ``ExperimentConfig().with_overrides(SMALL_DIGITS)`` or,
on the command line, one ``--set`` per entry.
"""

from __future__ import annotations

__all__ = ["SMALL_DIGITS"]

SMALL_DIGITS: tuple[str, ...] = (
    "data.dataset=digits",
    "federation.num_clients=4",
    "model.name=mlp",
    "model.hidden=32",
    "training.rounds=4",
    "training.local_epochs=1",
    "training.learning_rate=0.05",
    "canary.trigger_size=2",
)
