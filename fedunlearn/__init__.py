"""fedunlearn: federated unlearning, its attacks and defenses, on Flower.

In your own Flower app:

* :class:`RecordingFedAvg`: Flower's FedAvg that keeps the update history (put it on
  your strategy line); :class:`RecordingMixin` does the same for other FedAvg-family
  strategies;
* :func:`unlearn`: forget clients (or records) from the trained model with any method,
  retraining (the exact reference) included, from your ServerApp's ``main``;
* :func:`audit`: the unlearned models side by side against retraining;
* :class:`UnlearningContract`: what a ClientApp reads and says back to serve every
  method (docs/client-contract.md).

fedunlearn's own federation, for studies:

* :class:`ExperimentConfig`: one experiment, loaded from TOML and validated;
* :func:`simulate`: run it on a simulated federation and get the audit back;
* :class:`UnlearningMethod`, :class:`ClientRole`: what methods and roles subclass;
* :class:`UpdateHistory`: what the server keeps while training.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedunlearn.apps.simulation import simulate
    from fedunlearn.config.experiment import ExperimentConfig
    from fedunlearn.config.options import ConfigError
    from fedunlearn.evaluation.auditor import audit_models as audit
    from fedunlearn.federation.contract import ContractError, UnlearningContract
    from fedunlearn.federation.recording import RecordingFedAvg, RecordingFedProx, RecordingMixin
    from fedunlearn.history import DiskHistory, MemoryHistory, UpdateHistory
    from fedunlearn.roles.role import ClientRole
    from fedunlearn.unlearning.api import UnlearningResult, unlearn
    from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome
    from fedunlearn.unlearning.requests import ForgetSet

_EXPORTS = {
    "simulate": ("fedunlearn.apps.simulation", "simulate"),
    "ExperimentConfig": ("fedunlearn.config.experiment", "ExperimentConfig"),
    "ConfigError": ("fedunlearn.config.options", "ConfigError"),
    "audit": ("fedunlearn.evaluation.auditor", "audit_models"),
    "ContractError": ("fedunlearn.federation.contract", "ContractError"),
    "UnlearningContract": ("fedunlearn.federation.contract", "UnlearningContract"),
    "RecordingFedAvg": ("fedunlearn.federation.recording", "RecordingFedAvg"),
    "RecordingFedProx": ("fedunlearn.federation.recording", "RecordingFedProx"),
    "RecordingMixin": ("fedunlearn.federation.recording", "RecordingMixin"),
    "DiskHistory": ("fedunlearn.history", "DiskHistory"),
    "MemoryHistory": ("fedunlearn.history", "MemoryHistory"),
    "UpdateHistory": ("fedunlearn.history", "UpdateHistory"),
    "ClientRole": ("fedunlearn.roles.role", "ClientRole"),
    "UnlearningResult": ("fedunlearn.unlearning.api", "UnlearningResult"),
    "unlearn": ("fedunlearn.unlearning.api", "unlearn"),
    "UnlearningJob": ("fedunlearn.unlearning.method", "UnlearningJob"),
    "UnlearningMethod": ("fedunlearn.unlearning.method", "UnlearningMethod"),
    "UnlearningOutcome": ("fedunlearn.unlearning.method", "UnlearningOutcome"),
    "ForgetSet": ("fedunlearn.unlearning.requests", "ForgetSet"),
}
"""Public name -> (module, attribute). Loaded on first use: a client process imports
``fedunlearn.apps.client_app`` and should not pay for the server side (simulation,
reports, attacks) it never runs."""


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fedunlearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

__all__ = [
    "ClientRole",
    "ConfigError",
    "ContractError",
    "DiskHistory",
    "ExperimentConfig",
    "ForgetSet",
    "MemoryHistory",
    "RecordingFedAvg",
    "RecordingFedProx",
    "RecordingMixin",
    "UnlearningContract",
    "UnlearningJob",
    "UnlearningMethod",
    "UnlearningOutcome",
    "UnlearningResult",
    "UpdateHistory",
    "__version__",
    "audit",
    "simulate",
    "unlearn",
]
