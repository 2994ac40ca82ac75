"""fedunlearn: simulate federated unlearning, its attacks and defenses, on Flower.

The entry points:

* :class:`ExperimentConfig`: one experiment, loaded from TOML and validated;
* :func:`simulate`: run it on a simulated federation and get the audit back;
* :class:`UpdateHistory`: what the server keeps while training;
* :class:`UnlearningMethod`: the interface every unlearning method implements;
* :class:`ClientRole`: the base class of client roles.
"""

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.history import UpdateHistory
from fedunlearn.roles.role import ClientRole
from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome

__version__ = "0.1.0"

__all__ = [
    "ClientRole",
    "ConfigError",
    "ExperimentConfig",
    "UnlearningJob",
    "UnlearningMethod",
    "UnlearningOutcome",
    "UpdateHistory",
    "__version__",
    "simulate",
]
