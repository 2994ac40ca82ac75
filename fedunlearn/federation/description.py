"""What a history says of the strategy that trained it: the strategy, its sampling
arguments, the app's train config, its clients (node, where the id came from, examples,
what their replies showed they can do) and who failed in which round. Unlearning reads
it to rebuild a like strategy and to refuse methods a client or aggregation cannot
serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flwr.app import ConfigRecord

from fedunlearn.federation.sampling import FEDAVG_ARGUMENTS

if TYPE_CHECKING:
    from fedunlearn.federation.recording import RecordingMixin

__all__ = ["training_description"]


def training_description(strategy: RecordingMixin, train_config: ConfigRecord) -> dict[str, Any]:
    """The keyword arguments of :meth:`UpdateHistory.describe_training` for a finished
    ``strategy`` that trained with ``train_config`` (only JSON-able values are kept)."""
    clients = strategy.clients
    sources = clients.id_sources
    return {
        "strategy": f"{type(strategy).__module__}:{type(strategy).__qualname__}",
        "aggregation": strategy.aggregation(),
        "fraction_train": strategy.fraction_train,
        "fraction_evaluate": strategy.fraction_evaluate,
        "min_train_nodes": strategy.min_train_nodes,
        "min_evaluate_nodes": strategy.min_evaluate_nodes,
        "min_available_nodes": strategy.min_available_nodes,
        "weighted_by_key": strategy.weighted_by_key,
        "arrayrecord_key": strategy.arrayrecord_key,
        "configrecord_key": strategy.configrecord_key,
        "seed": strategy.seed,
        "train_config": {k: v for k, v in dict(train_config).items() if _jsonable(v)},
        "strategy_kwargs": {
            k: v
            for k, v in strategy.strategy_kwargs.items()
            if k not in FEDAVG_ARGUMENTS and _jsonable(v)
        },
        "clients": {
            str(c): {
                "node": node,
                "id_from": sources.get(c, "identified"),
                "num_examples": clients.num_examples(c),
                **strategy.replies.capabilities.get(c, {}),
            }
            for c, node in clients.nodes.items()
        },
        "failures": {str(r): c for r, c in strategy.failures.items()},
    }


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or (
        isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value)
    )
