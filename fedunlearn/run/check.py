"""``fedunlearn check``: everything a run would load, loaded, and nothing run.

The config is validated when it is read; this also loads every plugin it names (and
their options), the data (split over the clients), and builds the model for it. A problem
is a ConfigError (a key, a plugin, the model), or a DataError or PartitionError naming
the file and what is wrong with it.
"""

from __future__ import annotations

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import ConfigError
from fedunlearn.data.world import federated_data
from fedunlearn.learning.models import build_model
from fedunlearn.run.components import resolve_components


def check_experiment(config: ExperimentConfig) -> list[str]:
    """Load what ``config`` names; lines describing what was found (ConfigError if
    anything cannot load)."""
    components = resolve_components(config)
    world = federated_data(config)  # DataError, PartitionError: one line naming the file
    info, model = world.info, config.model
    try:
        build_model(model.name, info.input_shape, info.num_classes, model.hidden, config.seed)
    except Exception as err:  # a factory of the user's may raise anything
        raise ConfigError(
            [
                f"model.name = {model.name!r} cannot build a model for inputs shaped "
                f"{info.input_shape} with {info.num_classes} classes: {err}"
            ],
            "model",
        ) from err
    sizes = world.clients.sizes()
    lines = [
        f"data: inputs shaped {info.input_shape}, {info.num_classes} classes; "
        f"{len(sizes)} clients holding {min(sizes)} to {max(sizes)} examples; "
        f"test set {len(world.test)}"
    ]
    if world.audit_canaries is not None:
        lines.append(
            f"DP audit: {len(world.audit_canaries)} canaries, {int(world.audit_included.sum())} "
            f"of them in client {world.audit_client}'s data"
        )
    lines += [f"{label} will not run: {reason}" for label, reason in components.skipped.items()]
    return lines
