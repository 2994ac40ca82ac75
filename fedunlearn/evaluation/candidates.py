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

from dataclasses import dataclass

import numpy as np

from fedunlearn.attacks.attacker import CandidateView
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.data.world import FederatedData
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import ForgetSet

ATTACK = "query.attack"
"""Ask an inference-attacker client to score candidates against the models it is sent."""

MEMBERSHIP_ATTACKS = ("mia_baseline", "mia_gap")


@dataclass(frozen=True)
class Candidates:
    """Candidate records and the truth about them (harness only)."""

    view: CandidateView
    membership_truth: np.ndarray
    deletion_truth: np.ndarray
    removed_clients: frozenset[int]
    canary_members: bool  # members are memorization canaries (the auditing game)


class LeakageUnavailableError(ValueError):
    """The audit cannot score this run (say why); the run's other results stand."""


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
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """((inputs, labels), truth) of both sets together, in a seeded random order."""
    order = rng.permutation(len(positives) + len(negatives))
    x = np.concatenate([positives.x, negatives.x])[order]
    y = np.concatenate([positives.y, negatives.y])[order]
    truth = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])[order]
    return (x, y), truth


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
    removed_records = forgotten_records(world, forgotten)
    memorized = removed_records.subset(
        np.flatnonzero(np.isin(removed_records.ids, world.memorization_ids))
    )
    if len(memorized):
        # Memorization canaries against twins drawn the same way but never trained on.
        members = _sample(memorized, a.candidates, rng)
        nonmembers = _sample(world.memorization_holdout, len(members), rng)
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
        nonmembers = _sample(pool, len(members), rng)
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
    retained = _sample(_concat(stay), len(deleted), rng)
    clients = {}
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
    removed = set(forgotten.clients) | {c for c, _ in forgotten.records}
    # Shuffled, so the order the attacker receives the candidates in is no clue.
    membership, membership_truth = _shuffled(members, nonmembers, rng)
    deletion, deletion_truth = _shuffled(deleted, retained, rng)
    return Candidates(
        view=CandidateView(membership=membership, deletion=deletion, clients=clients),
        membership_truth=membership_truth,
        deletion_truth=deletion_truth,
        removed_clients=frozenset(removed - skip_clients),
        canary_members=bool(len(memorized)),
    )
