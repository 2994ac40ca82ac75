"""Candidate records of the leakage audit, and the truth about them (harness only).

For membership, the forgotten client's memorization canaries (members) against twins
drawn the same way and never trained on, or, without canaries, forgotten ordinary
records against held-out records (the backdoor canary is left out: triggered members
against clean non-members would measure the trigger, not membership); for deletion
inference, forgotten records against records of clients that stay; for client deletion
inference, a few records of every client. The attacker gets a
:class:`~fedunlearn.attacks.attacker.CandidateView` of them: inputs and labels, never
the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fedunlearn.attacks.attacker import CandidateView
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.canary import memorization_canaries
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import FederatedData
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import ForgetSet

ATTACK = "query.attack"
"""Ask an inference-attacker client to score candidates against the models it is sent."""

MEMBERSHIP_ATTACKS = ("mia_baseline", "mia_gap")


def _no_ids() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Candidates:
    """Candidate records and the truth about them (harness only).

    ``membership_ids`` and ``deletion_ids`` name each candidate (its record id), in the
    order the attacker scores them; ``membership_clients`` and ``deletion_clients`` the
    client holding it (-1: none, a held-out record or a canary twin);
    ``client_sample_ids`` the records of each client the attacker holds for client
    deletion inference.
    """

    view: CandidateView
    membership_truth: np.ndarray
    deletion_truth: np.ndarray
    removed_clients: frozenset[int]
    canary_members: bool  # members are memorization canaries (the auditing game)
    membership_ids: np.ndarray = field(default_factory=_no_ids)
    membership_clients: np.ndarray = field(default_factory=_no_ids)
    deletion_ids: np.ndarray = field(default_factory=_no_ids)
    deletion_clients: np.ndarray = field(default_factory=_no_ids)
    client_sample_ids: dict[int, np.ndarray] = field(default_factory=dict)


class LeakageUnavailableError(ValueError):
    """The audit cannot score this run (say why); the run's other results stand."""


class CandidatePoolError(ValueError):
    """``attack.negatives`` asks for more negative candidates than their pool holds."""


def _sample(data: ArrayDataset, count: int, rng: np.random.Generator) -> ArrayDataset:
    if len(data) <= count:
        return data
    return data.subset(np.sort(rng.choice(len(data), size=count, replace=False)))


def _concat(parts: list[ArrayDataset]) -> ArrayDataset:
    return ArrayDataset(
        np.concatenate([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.ids for p in parts]),
    )


def _shuffled(
    positives: ArrayDataset, negatives: ArrayDataset, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """((inputs, labels), truth, record ids) of both sets together, in a seeded random
    order."""
    order = rng.permutation(len(positives) + len(negatives))
    x = np.concatenate([positives.x, negatives.x])[order]
    y = np.concatenate([positives.y, negatives.y])[order]
    truth = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])[order]
    ids = np.concatenate([positives.ids, negatives.ids]).astype(np.int64)[order]
    return (x, y), truth, ids


def owners(world: FederatedData, ids: np.ndarray) -> np.ndarray:
    """The client holding each record id (-1 for a record no client holds)."""
    holder = {int(i): c for c, data in enumerate(world.clients) for i in data.ids}
    return np.array([holder.get(int(i), -1) for i in ids], dtype=np.int64)


def _draw_negatives(
    pool: ArrayDataset, count: int, asked: bool, what: str, hint: str, rng: np.random.Generator
) -> ArrayDataset:
    """``count`` records of ``pool``; when ``attack.negatives`` asked for them (``asked``)
    and the pool holds fewer, say so rather than score fewer."""
    if asked and len(pool) < count:
        raise CandidatePoolError(
            f"attack.negatives = {count} asks for {count} {what}, but their pool holds "
            f"only {len(pool)}; lower attack.negatives to at most {len(pool)} ({hint})"
        )
    return _sample(pool, count, rng)


def _twins(world: FederatedData, count: int, seed: int) -> ArrayDataset:
    """The world's memorization-canary twins, topped up to ``count`` with fresh ones
    drawn the same way (uniform noise, random labels; never given to anybody)."""
    holdout = world.memorization_holdout
    if count <= len(holdout):
        return holdout
    first = int(max(holdout.ids.max(initial=-1), *(c.ids.max(initial=-1) for c in world.clients)))
    extra = memorization_canaries(
        count - len(holdout), world.info.input_shape, world.info.num_classes, first + 1, seed
    )
    return _concat([holdout, extra])


def forgotten_records(world: FederatedData, forgotten: ForgetSet) -> ArrayDataset:
    """Everything ``forgotten`` names, as records."""
    parts = [world.client(c) for c in sorted(forgotten.clients)]
    parts += [world.records(c, np.asarray(ids)) for c, ids in forgotten.records]
    parts = [part for part in parts if len(part)]
    if not parts:
        raise LeakageUnavailableError(
            "the forgotten records are unknown to the harness (nothing was forgotten, or "
            "only records a client crafted or never held), so there is no member to score"
        )
    return _concat(parts)


def split_held_out(
    test: ArrayDataset, aux_fraction: float, seed: int
) -> tuple[ArrayDataset, ArrayDataset]:
    """(observer's own data, evaluation pool): a seeded split of the held-out records."""
    order = np.random.default_rng(seed).permutation(len(test))
    cut = int(aux_fraction * len(test))
    return test.subset(np.sort(order[:cut])), test.subset(np.sort(order[cut:]))


def build_candidates(
    config: ExperimentConfig,
    world: FederatedData,
    forgotten: ForgetSet,
    pool: ArrayDataset,
    skip_clients: set[int],
) -> Candidates:
    """Members, non-members, deleted and retained records, client samples; and truth."""
    a = config.attack
    rng = np.random.default_rng(derive_seed(config.seed, "attack-candidates") % 2**32)
    asked = a.negatives > 0
    removed_records = forgotten_records(world, forgotten)
    memorized = removed_records.subset(
        np.flatnonzero(np.isin(removed_records.ids, world.memorization_ids))
    )
    if len(memorized):
        # Memorization canaries against twins drawn the same way but never trained on.
        members = _sample(memorized, a.candidates, rng)
        count = a.negatives or len(members)
        twins = _twins(world, count, derive_seed(config.seed, "more-twins") % 2**32)
        nonmembers = _sample(twins, count, rng)
    else:
        # Ordinary records: the backdoor canary generalises to every triggered input, so
        # it says nothing about membership of a record; leave it out.
        ordinary = removed_records.without_ids(world.canary_ids)
        if not len(ordinary):
            raise LeakageUnavailableError(
                "every forgotten record is a backdoor canary: against clean non-members "
                "membership inference would measure the trigger; set canary.memorization "
                "> 0 for canaries made to be scored"
            )
        members = _sample(ordinary, a.candidates, rng)
        nonmembers = _draw_negatives(
            pool,
            a.negatives or len(members),
            asked,
            "held-out non-members",
            "or grow the held-out pool: data.test_fraction up, attack.aux_fraction down; "
            "or forget the client holding the memorization canaries, whose twins are "
            "drawn on demand",
            rng,
        )
    deleted = _sample(removed_records, a.candidates, rng)
    forgotten_ids = set(removed_records.ids.tolist())
    stay = [
        world.client(c).without_ids(np.asarray(sorted(forgotten_ids)))
        for c in range(len(world.clients))
        if c not in forgotten.clients and c not in skip_clients
    ]
    if not stay:
        raise LeakageUnavailableError(
            "every client the attacker could compare with was forgotten: no retained records"
        )
    retained = _draw_negatives(
        _concat(stay),
        a.negatives or len(deleted),
        asked,
        "retained records (of clients that stay)",
        "or use more data per client",
        rng,
    )
    clients: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    sample_ids: dict[int, np.ndarray] = {}
    for c in range(len(world.clients)):
        if c in skip_clients:
            continue
        data = (
            world.records(c, np.asarray(forgotten.records_of(c)))
            if forgotten.records_of(c)
            else world.client(c)
        )
        sample = _sample(data, a.client_samples, rng)
        clients[c] = (sample.x, sample.y)
        sample_ids[c] = sample.ids.astype(np.int64)
    removed = set(forgotten.clients) | {c for c, _ in forgotten.records}
    # Shuffled, so the order the attacker receives the candidates in is no clue.
    membership, membership_truth, membership_ids = _shuffled(members, nonmembers, rng)
    deletion, deletion_truth, deletion_ids = _shuffled(deleted, retained, rng)
    return Candidates(
        view=CandidateView(membership=membership, deletion=deletion, clients=clients),
        membership_truth=membership_truth,
        deletion_truth=deletion_truth,
        removed_clients=frozenset(removed - skip_clients),
        canary_members=bool(len(memorized)),
        membership_ids=membership_ids,
        membership_clients=owners(world, membership_ids),
        deletion_ids=deletion_ids,
        deletion_clients=owners(world, deletion_ids),
        client_sample_ids=sample_ids,
    )
