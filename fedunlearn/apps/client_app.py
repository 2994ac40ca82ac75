"""The Flower ClientApp: routes each message to the client's role.

Message types handled:

* ``query.identify``: report the stable client id (partition id) and example count;
* ``train``: local training (:meth:`ClientRole.fit`);
* ``train.ascent``: unlearn the client's data by gradient ascent (:meth:`ClientRole.ascend`);
* ``evaluate``: local evaluation (:meth:`ClientRole.evaluate`);
* ``query.requests``: the client's unlearning requests.

Every handler answers within ``federation.timeout`` or gives up
(:mod:`fedunlearn.apps.deadline`), so a straggler never outlives the server's wait.
``app`` reads the experiment from the run config (``flwr run``);
:func:`build_client_app` binds a config directly (the ``fedunlearn`` command).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from functools import lru_cache
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.apps.deadline import deadline_mod
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.world import federated_data
from fedunlearn.defenses.privacy import history_metrics
from fedunlearn.federation.inline import delivering_in_process
from fedunlearn.federation.protocol import (
    ARRAYS,
    CLIENT_ID,
    CONFIG,
    EXPERIMENT,
    METRICS,
    NUM_EXAMPLES,
    AscentInstruction,
    TrainInstruction,
)
from fedunlearn.federation.references import reference_config, split_reference_tag
from fedunlearn.learning.arrays import from_record, to_record
from fedunlearn.learning.threads import pin_threads
from fedunlearn.roles.role import ClientRole, role_with_options
from fedunlearn.roles.setup import ClientSetup
from fedunlearn.unlearning.requests import encode_requests


@lru_cache(maxsize=8)
def _config_from_items(items: tuple) -> ExperimentConfig:
    return ExperimentConfig.from_run_config(dict(items))


def client_id_of(context: Context, config: ExperimentConfig) -> int:
    """The stable client id from the node config (``partition-id``), checked."""
    node = context.node_config
    if "partition-id" not in node:
        raise ValueError(
            "this SuperNode has no partition-id; start it with "
            '--node-config "partition-id=<i> num-partitions=<n>"'
        )
    client_id = int(node["partition-id"])
    expected = config.federation.num_clients
    if "num-partitions" in node and int(node["num-partitions"]) != expected:
        raise ValueError(
            f"node config says num-partitions={node['num-partitions']} but the experiment "
            f"has federation.num_clients={expected}"
        )
    return client_id


class NamespacedState(MutableMapping):
    """A view of ``context.state`` whose keys carry an experiment's prefix, so runs that
    share a simulation (a sweep) never see each other's client state."""

    def __init__(self, state: RecordDict, prefix: str) -> None:
        self._state = state
        self._prefix = f"{prefix}/" if prefix else ""

    def __getitem__(self, key: str) -> Any:
        return self._state[self._prefix + key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[self._prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[self._prefix + key]

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in list(self._state) if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


ConfigSource = ExperimentConfig | Mapping[str, ExperimentConfig] | None


def experiment_of(
    msg: Message, configs: ConfigSource, context: Context
) -> tuple[str, ExperimentConfig]:
    """The experiment a message belongs to: its tag and config.

    ``configs`` is one config, several by tag (a sweep sharing one simulation; the server
    tags every message), or None (read the run config, as under ``flwr run``). A tag
    ending in ``#reference-<k>`` (or ``#reference-<k>-offline``,
    :mod:`fedunlearn.federation.references`) belongs to reference federation ``k`` of the
    experiment the rest of the tag names.
    """
    record = msg.content.config_records.get(EXPERIMENT)
    tag = "" if record is None else str(record.get("id", ""))
    base_tag, index, online = split_reference_tag(tag)
    if configs is None:
        base = _config_from_items(tuple(sorted(context.run_config.items())))
        own_tag = ""
    elif isinstance(configs, ExperimentConfig):
        base, own_tag = configs, ""
    else:
        if record is None or base_tag not in configs:
            raise ValueError(f"message carries no known experiment tag (known: {sorted(configs)})")
        base, own_tag = configs[base_tag], tag
    if index is None:
        return own_tag, base
    return tag, _reference_of(base, index, online)


_REFERENCES: dict[tuple[int, int, bool], tuple[ExperimentConfig, ExperimentConfig]] = {}
"""Reference configs by (id of the run's config, index, online), with the run's config
kept so its id stays its own."""


def _reference_of(base: ExperimentConfig, index: int, online: bool) -> ExperimentConfig:
    key = (id(base), index, online)
    cached = _REFERENCES.get(key)
    if cached is None or cached[0] is not base:
        if len(_REFERENCES) >= 64:
            _REFERENCES.clear()
        cached = (base, reference_config(base, index, online))
        _REFERENCES[key] = cached
    return cached[1]


def role_for(context: Context, config: ExperimentConfig, tag: str = "") -> ClientRole:
    """Build the role of the client this context belongs to."""
    client_id = client_id_of(context, config)
    world = federated_data(config)
    cls, options = role_with_options(config, config.roles.role_of(client_id))
    setup = ClientSetup(
        client_id,
        world.client(client_id),
        world.info,
        config,
        NamespacedState(context.state, tag),
        world.canary_ids_of(client_id),
        options,
    )
    return cls(setup)


def warm_up_client(config: ExperimentConfig) -> None:
    """Do now what a client's first messages of ``config`` would otherwise do: set
    torch's threads to ``simulation.client_cpus``, build the world, and take one SGD
    step (learning rate 0) on a throwaway model, which loads torch's lazily imported
    optimizer machinery (about 0.8 s). Random state is left as it was.
    """
    import numpy as np

    from fedunlearn.learning.models import build_model
    from fedunlearn.learning.training import train_locally

    pin_threads(config.simulation.client_cpus)
    world = federated_data(config)
    if len(world.test) == 0:  # nothing to take a step on; the run copes without a test set
        return
    m, probe = config.model, world.test.subset(np.arange(min(2, len(world.test))))
    model = build_model(m.name, world.info.input_shape, world.info.num_classes, m.hidden, 0)
    train_locally(model, probe, epochs=1, batch_size=2, learning_rate=0.0, seed=0)


def build_client_app(config: ConfigSource = None) -> ClientApp:
    """A ClientApp for ``config``: one experiment, several by tag (see
    :func:`experiment_of`), or None to read it from each message's run config."""

    def timeout_of(msg: Message, context: Context) -> float | None:
        # In-process clients are cut off by InlineGrid itself; a second thread there
        # would only outlive an interrupted run and abort the interpreter at exit.
        if delivering_in_process():
            return None
        return experiment_of(msg, config, context)[1].federation.timeout

    app = ClientApp(mods=[deadline_mod(timeout_of)])

    def role_of_message(msg: Message, context: Context) -> ClientRole:
        tag, cfg = experiment_of(msg, config, context)
        pin_threads(cfg.simulation.client_cpus)  # the client's CPU share, not the machine
        return role_for(context, cfg, tag)

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        metrics = MetricRecord({CLIENT_ID: role.client_id, NUM_EXAMPLES: len(role.setup.data)})
        ids, digests = role.commitment()
        commitment = ConfigRecord({"ids": ids, "digests": digests})
        return Message(RecordDict({METRICS: metrics, "commitment": commitment}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        instruction = TrainInstruction.from_config(msg.content[CONFIG])
        weights, report = role.fit(from_record(msg.content[ARRAYS]), instruction)
        content = RecordDict({ARRAYS: to_record(weights), METRICS: report.to_metrics()})
        return Message(content, reply_to=msg)

    @app.train("ascent")
    def ascent(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        instruction = AscentInstruction.from_config(msg.content[CONFIG])
        weights, metrics = role.ascend(from_record(msg.content[ARRAYS]), instruction)
        record = MetricRecord({NUM_EXAMPLES: len(role.setup.data), **metrics})
        return Message(RecordDict({ARRAYS: to_record(weights), METRICS: record}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        metrics = role.evaluate(from_record(msg.content[ARRAYS]))
        record = MetricRecord({NUM_EXAMPLES: len(role.setup.data), **metrics})
        return Message(RecordDict({METRICS: record}), reply_to=msg)

    @app.query("privacy")
    def privacy(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        spent = {f"epsilon/{phase}": value for phase, value in role.privacy_spent().items()}
        histories = history_metrics(role.privacy_histories())
        record = MetricRecord({CLIENT_ID: role.client_id, **spent, **histories})
        return Message(RecordDict({METRICS: record}), reply_to=msg)

    @app.query("attack")
    def attack(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        return Message(role.attack(msg.content), reply_to=msg)

    @app.query("requests")
    def requests(msg: Message, context: Context) -> Message:
        role = role_of_message(msg, context)
        return Message(encode_requests(role.unlearning_requests()), reply_to=msg)

    return app


app = build_client_app()
