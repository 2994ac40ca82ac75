"""The simulated world of an experiment: who holds which data, and the ground truth.

This is the harness's knowledge, not the server's: in a simulation, every process
(server and clients) rebuilds the same split from the config and seed, each client
takes its own part, and only the audit reads the forgotten client's data. Nothing in
the federated phases may rely on it except a client reading its own partition.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from fedunlearn.config.dataset import DataConfig
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.sections import CanaryConfig
from fedunlearn.data.canary import memorization_canaries, plant_canary, triggered_test_set
from fedunlearn.data.datasets import ArrayDataset, DataError, DatasetInfo, load_data, train_test
from fedunlearn.data.partition import partition_indices
from fedunlearn.seeding import derive_seed


class ClientPartitions(Sequence[ArrayDataset]):
    """Every client's training data, each client's copy made when first asked for.

    A process serving a few clients (a Ray actor, a SuperNode) copies only their
    partitions out of the shared pool, and keeps the last ``keep`` it built, so its
    memory does not grow with the number of clients.

    Parameters
    ----------
    pool : ArrayDataset
        The training pool every partition indexes.
    parts : sequence of np.ndarray
        Each client's positions in ``pool``.
    built : mapping of int to ArrayDataset, optional
        Clients whose data is not a plain slice of the pool (the canary client), built
        up front and always kept.
    keep : int
        How many other clients' copies to keep, most recently used first.
    """

    def __init__(
        self,
        pool: ArrayDataset,
        parts: Sequence[np.ndarray],
        built: Mapping[int, ArrayDataset] | None = None,
        keep: int = 16,
    ) -> None:
        self.pool = pool
        self.parts = tuple(parts)
        self._built = dict(built or {})
        self._recent: OrderedDict[int, ArrayDataset] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()  # the client deadline runs handlers in threads

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, client: int) -> ArrayDataset:  # type: ignore[override]
        if not isinstance(client, int | np.integer) or not 0 <= client < len(self.parts):
            raise IndexError(f"client {client!r} is outside 0..{len(self.parts) - 1}")
        client = int(client)
        if client in self._built:
            return self._built[client]
        with self._lock:
            data = self._recent.pop(client, None)
            if data is None:
                data = self.pool.subset(self.parts[client])
            self._recent[client] = data
            while len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return data

    def sizes(self) -> list[int]:
        """Every client's number of training examples, without copying any data."""
        return [len(self[c]) if c in self._built else len(p) for c, p in enumerate(self.parts)]


@dataclass(frozen=True)
class FederatedData:
    """Every client's training data, the server's test set, and the canary."""

    info: DatasetInfo
    clients: ClientPartitions
    test: ArrayDataset
    triggered_test: ArrayDataset | None
    canary_client: int | None
    canary_ids: np.ndarray
    server_unlabelled: np.ndarray
    """Inputs the server holds without labels (``data.server_fraction``)."""
    memorization_ids: np.ndarray
    """Ids of the memorization canaries planted in the canary client's data."""
    memorization_holdout: ArrayDataset
    """Memorization canaries drawn the same way but given to nobody (non-members)."""
    audit_client: int | None = None
    """The client whose data holds the one-run DP audit's canaries (``privacy.
    audit_canaries``): the first of ``unlearning.requesters``; None without the audit."""
    audit_canaries: ArrayDataset | None = None
    """Every audit canary, planted or not (:func:`with_audit_canaries`)."""
    audit_included: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Whether each audit canary is in ``audit_client``'s data (probability 1/2 each)."""

    def client(self, client_id: int) -> ArrayDataset:
        """The training data of ``client_id``."""
        if not 0 <= client_id < len(self.clients):
            raise ValueError(
                f"client id {client_id} is outside 0..{len(self.clients) - 1}; the "
                f"experiment has {len(self.clients)} clients"
            )
        return self.clients[client_id]

    def canary_ids_of(self, client_id: int) -> np.ndarray:
        """Record ids of the canary records ``client_id`` holds, backdoor and
        memorization canaries (empty if none)."""
        if client_id != self.canary_client:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.canary_ids, self.memorization_ids])

    def records(self, client_id: int, record_ids: np.ndarray | None = None) -> ArrayDataset:
        """The records of ``client_id`` (only ``record_ids`` of them when given)."""
        data = self.client(client_id)
        if record_ids is None:
            return data
        return data.subset(np.flatnonzero(np.isin(data.ids, record_ids)))


def planted_positions(memorization: int, inclusion_seed: int) -> np.ndarray:
    """Which of the ``2 * memorization`` canaries drawn are planted, in order.

    ``inclusion_seed = -1``: the first ``memorization``; ``>= 0``: each one with
    probability 1/2, independently, from ``inclusion_seed`` (a reference federation's
    random half, so every canary is IN some references and OUT of the others).
    """
    if inclusion_seed < 0:
        return np.arange(memorization)
    rng = np.random.default_rng(derive_seed(inclusion_seed, "planted") % 2**32)
    return np.flatnonzero(rng.random(2 * memorization) < 0.5)


_BUILDING = threading.RLock()
"""Held while a world is built: a client's warm-up thread and its first message (or
the client deadline's handler threads) may ask for the same world at once. Reentrant,
in case a dataset plugin asks for a world itself."""


def federated_data(config: ExperimentConfig) -> FederatedData:
    """The world of ``config``, built once per process and cached.

    It follows the world seed (``data.seed``, or the experiment's ``seed`` when that is
    -1): the split, the partition and the canaries; never the training randomness.

    Raises
    ------
    DataError
        The data cannot be read or used (the message names the file and the problem).
    PartitionError
        The training pool cannot be split over ``federation.num_clients`` clients.
    """
    # DataConfig holds a list (features), so the cache keys on its JSON form; without
    # data.seed, so -1 and the seed it stands for share one world.
    raw = dataclasses.asdict(config.data)
    raw.pop("seed")
    data = json.dumps(raw, sort_keys=True)
    seed = config.world_seed
    m, requesters = config.privacy.audit_canaries, config.unlearning.requesters
    with _BUILDING:  # a second caller waits for the world the first is building
        if m and requesters:
            n = config.federation.num_clients
            return _audited(data, n, config.canary, seed, m, requesters[0])
        return _build(data, config.federation.num_clients, config.canary, seed)


@lru_cache(maxsize=4)
def _audited(
    data_json: str, num_clients: int, canary: CanaryConfig, seed: int, m: int, client: int
) -> FederatedData:
    return with_audit_canaries(_build(data_json, num_clients, canary, seed), m, client, seed)


def with_audit_canaries(world: FederatedData, m: int, client: int, seed: int) -> FederatedData:
    """``world`` with the one-run DP audit's canaries (Steinke, Nasr and Jagielski 2023).

    ``m`` fresh noise records with random labels (:func:`~fedunlearn.data.canary.
    memorization_canaries`, seeded by ``derive_seed(seed, "dp-audit")``), with record
    ids past every record of ``world`` (real ones and memorization canaries); each is
    added to ``client``'s data with probability 1/2 (seeded by ``derive_seed(seed,
    "dp-audit-inclusion")``). The inclusions are kept in ``audit_included``.

    Parameters
    ----------
    world : FederatedData
        The world without audit canaries.
    m : int
        Number of audit canaries, >= 1.
    client : int
        The client whose data receives the included canaries.
    seed : int
        The experiment's seed.
    """
    if m < 1:
        raise ValueError(f"privacy.audit_canaries must be >= 1 here, got {m}")
    if not 0 <= client < len(world.clients):
        raise ValueError(f"audit client {client} is outside 0..{len(world.clients) - 1}")
    pool = world.clients.pool
    taken = [len(pool) + len(world.test) + len(world.server_unlabelled)]
    taken += [
        int(ids.max()) + 1
        for ids in (world.memorization_ids, world.memorization_holdout.ids)
        if len(ids)
    ]
    canaries = memorization_canaries(
        m,
        world.info.input_shape,
        world.info.num_classes,
        max(taken),
        seed=derive_seed(seed, "dp-audit") % 2**32,
    )
    included = np.random.default_rng(derive_seed(seed, "dp-audit-inclusion") % 2**32).random(m)
    included = included < 0.5
    own, planted = world.clients[client], canaries.subset(np.flatnonzero(included))
    built = dict(world.clients._built)
    built[client] = ArrayDataset(
        np.concatenate([own.x, planted.x]),
        np.concatenate([own.y, planted.y]),
        np.concatenate([own.ids, planted.ids]),
    )
    return dataclasses.replace(
        world,
        clients=ClientPartitions(pool, world.clients.parts, built),
        audit_client=client,
        audit_canaries=canaries,
        audit_included=included,
    )


@lru_cache(maxsize=4)
def _build(data_json: str, num_clients: int, canary: CanaryConfig, seed: int) -> FederatedData:
    data = DataConfig(**json.loads(data_json))
    loaded = load_data(data)
    x, y, info = loaded.x, loaded.y, loaded.info
    if canary.enabled and canary.target_class >= info.num_classes:
        raise DataError(
            f"canary.target_class {canary.target_class} is not a class of {data.dataset} "
            f"(classes 0..{info.num_classes - 1})"
        )
    if canary.enabled and len(info.input_shape) == 3:
        side = min(info.input_shape[1:])
        if canary.trigger_size > side:
            raise DataError(
                f"canary.trigger_size {canary.trigger_size} is larger than the images of "
                f"{data.dataset} ({info.input_shape[1]}x{info.input_shape[2]}); set "
                f"canary.trigger_size <= {side}"
            )
    train, test = train_test(x, y, data.test_fraction, derive_seed(seed, "split") % 2**32)
    server_x = np.zeros((0, *info.input_shape), dtype=np.float32)
    if data.server_fraction > 0:
        train, server = train_test(
            train.x, train.y, data.server_fraction, derive_seed(seed, "server") % 2**32, train.ids
        )
        server_x = server.x
    parts = partition_indices(
        train.y,
        num_clients,
        data.partition,
        alpha=data.alpha,
        classes_per_client=data.classes_per_client,
        min_size=data.min_partition_size,
        seed=derive_seed(seed, "partition") % 2**32,
        groups=None if loaded.groups is None else loaded.groups[train.ids],
        partition_by=data.partition_by,
    )
    built: dict[int, ArrayDataset] = {}
    triggered, canary_client, canary_ids = None, None, np.zeros(0, dtype=np.int64)
    if canary.enabled:
        canary_client = canary.client
        built[canary_client], canary_ids = plant_canary(
            train.subset(parts[canary_client]),
            canary.fraction,
            canary.target_class,
            canary.trigger_size,
            seed=derive_seed(seed, "canary") % 2**32,
        )
        triggered = triggered_test_set(test, canary.target_class, canary.trigger_size)
    memorized = np.zeros(0, dtype=np.int64)
    holdout = ArrayDataset(
        np.zeros((0, *info.input_shape), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    )
    if canary.enabled and canary.memorization:
        first = len(y)  # ids past every real record
        both = memorization_canaries(
            2 * canary.memorization,
            info.input_shape,
            info.num_classes,
            first,
            seed=derive_seed(seed, "memorization") % 2**32,
        )
        planted_at = planted_positions(canary.memorization, canary.inclusion_seed)
        planted = both.subset(planted_at)
        holdout = both.subset(np.setdiff1d(np.arange(2 * canary.memorization), planted_at))
        own = built[canary.client]
        built[canary.client] = ArrayDataset(
            np.concatenate([own.x, planted.x]),
            np.concatenate([own.y, planted.y]),
            np.concatenate([own.ids, planted.ids]),
        )
        memorized = planted.ids
    return FederatedData(
        info,
        ClientPartitions(train, parts, built),
        test,
        triggered,
        canary_client,
        canary_ids,
        server_x,
        memorized,
        holdout,
    )
