"""The experiment config: one TOML file describes one run, validated before anything runs.

Owns: the config sections and their options, loading, overrides and the Flower
run-config round trip (:mod:`.experiment`).

May import: nothing else of fedunlearn but :mod:`fedunlearn.plugins` (it is the bottom
layer: every other layer reads it).
"""

from fedunlearn.config.experiment import ConfigError, ExperimentConfig, describe

__all__ = ["ConfigError", "ExperimentConfig", "describe"]
