"""The experiment config: one TOML file describes one run, validated before anything runs.

Owns: the generic machinery of self-explaining, self-validating options
(:mod:`.options`), the config's sections (:mod:`.sections`, with ``[data]`` in
:mod:`.dataset` and the threat model in :mod:`.threats`), loading, overrides and the
Flower run-config round trip (:mod:`.experiment`), and the rules of which keys make two
runs the same run (:mod:`.identity`).

May import: nothing else of fedunlearn (it is the bottom layer: every other layer reads
it).
"""

from fedunlearn.config.experiment import ExperimentConfig, describe
from fedunlearn.config.options import ConfigError

__all__ = ["ConfigError", "ExperimentConfig", "describe"]
